"""A style someone shares, end to end: their pytorch/examples file imported, published to the (loopback) Hub with
huggingface-hub's real upload code, found by search, pulled by its commit into a fresh cache, then used offline from
the CLI, which picks the method the file was made for, and paints what the original network paints."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

from brushstream.core.cli import main
from brushstream.core.methods import DEFAULT_METHOD, method_for_weights

from .test_foreign_johnson import ExamplesNet, _randomise, examples_reference

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload:DeprecationWarning")


def _run(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _photo(path):
    g = torch.Generator().manual_seed(5)
    pixels = (torch.rand(48, 64, 3, generator=g) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(path)
    return torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255


def test_a_shared_style_goes_round_the_hub_and_paints_as_at_home(empty_hub, tmp_path, monkeypatch, capsys):
    net = _randomise(ExamplesNet(), 7)
    original = tmp_path / "candy.pth"
    torch.save(net.state_dict(), original)

    _run(capsys, "weights", "import", original, "-o", tmp_path / "mine")
    converted = tmp_path / "mine" / "candy.safetensors"
    published = _run(capsys, "weights", "publish", converted, "--repo", "ada/styles", "--licence", "BSD-3-Clause")
    commit = re.search(r"^commit\t([0-9a-f]{40})", published, re.M)[1]

    found = _run(capsys, "weights", "search", "candy", "--repo", "ada/styles")
    assert re.search(r"hf://ada/styles@[0-9a-f]{40}/candy\.safetensors#sha256=[0-9a-f]{64}\tjohnson\tcandy", found)

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "fresh_cache"))   # another user's machine
    pinned = _run(capsys, "weights", "pull", f"hf://ada/styles@{commit}/candy.safetensors").strip()
    assert pinned.startswith(f"hf://ada/styles@{commit}/candy.safetensors#sha256=")

    from huggingface_hub import constants
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    x = _photo(tmp_path / "photo.png")
    assert method_for_weights(pinned) == "johnson"
    _run(capsys, "stylize", tmp_path / "photo.png", "--model", pinned, "-o", tmp_path / "out.png")   # no --method
    painted = torch.from_numpy(np.array(Image.open(tmp_path / "out.png").convert("RGB"))).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = (examples_reference(net, x).clamp(0, 1) * 255).round()
    assert float((painted.float() - expected).abs().max()) <= 1.0   # 8-bit rounding only
    assert float(expected.std()) > 10   # the network paints something, not a flat picture


def test_the_method_comes_from_what_the_model_is(tmp_path):
    assert method_for_weights("johnson_starry_night") == "johnson"
    assert method_for_weights("microast_official") == "microast"
    assert method_for_weights("lst_r31") == "lst"
    assert method_for_weights("vgg19_normalised_r31_decoder") is None   # a decoder is no method's model
    assert DEFAULT_METHOD == "microast"
