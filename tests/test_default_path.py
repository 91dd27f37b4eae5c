"""The default arbitrary-style path: one default method that every host runs, loaded from the bundled file with no
download, whose weights never trained on the held-out paintings the project judges it by."""
import inspect
import json
import socket
from pathlib import Path

import pytest
import torch

from brushstream.core import api, video_stylize
from brushstream.core.hub import weights as weight_store
from brushstream.core.io.image import load_image
from brushstream.core.methods import DEFAULT_METHOD, build, get
from brushstream.core.train.data import UNSEEN_STYLES

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"


def default_model() -> str:
    return next(str(o.default) for o in get(DEFAULT_METHOD).options if o.name == "model")


def test_every_host_runs_the_one_default_method():
    from brushstream.core.cli import _pick_method, build_parser
    parser = build_parser()
    for command in (["stylize", "photo.jpg", "-o", "out.png"], ["video", "clip.mp4", "-o", "out.mp4"]):
        args = parser.parse_args(command)
        _pick_method(args)   # no --method and no --model: the default
        assert args.method == DEFAULT_METHOD
    assert inspect.signature(api.stylize).parameters["method"].default == DEFAULT_METHOD
    assert inspect.signature(api.load).parameters["method"].default == DEFAULT_METHOD
    assert inspect.signature(video_stylize.stylize_video).parameters["method"].default == DEFAULT_METHOD
    workflow = json.loads((ROOT / "example_workflows" / "image_arbitrary_style_api.json").read_text())
    loaders = [n["class_type"] for n in workflow.values() if n["class_type"].startswith("BrushstreamLoad_")]
    assert loaders == [f"BrushstreamLoad_{DEFAULT_METHOD}"]
    assert workflow[next(k for k, n in workflow.items() if n["class_type"] in loaders)]["inputs"].get(
        "model", default_model()) == default_model()
    first_command = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].splitlines()[0]
    assert "brushstream stylize" in first_command and "--method" not in first_command


def test_the_default_paints_offline_from_the_bundled_file(monkeypatch):
    monkeypatch.delenv(weight_store.ENV_DIR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("the default method tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert weight_store.resolve(default_model()).parent == weight_store.BUNDLED_DIR
    photo = load_image(SAMPLES / "chelsea.jpg", long_side=256).image
    style = load_image(SAMPLES / "starry_night.jpg", long_side=256).image
    model = build(DEFAULT_METHOD)
    out = model.stylize(photo, model.encode_style(style))
    assert out.shape == photo.shape and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    assert (out - photo).abs().mean() > 0.1   # painted, not the photo back


def test_the_default_weights_never_saw_the_held_out_paintings():
    _, meta = weight_store.load_state_dict(default_model())
    trained_on = set(json.loads(meta["styles"]))
    assert len(trained_on) >= 50
    assert not trained_on & set(UNSEEN_STYLES)
    assert set(json.loads(meta["held_out"])) >= set(UNSEEN_STYLES)


@pytest.mark.parametrize("model", ["microast_official", "default"])
def test_a_style_code_carries_the_style_s_statistics_into_the_decoder(model):
    """The style side's feature modulation: the decoder's first block reads features whose channel mean and std are
    those the style code holds, whatever the photo."""
    from brushstream.core.nets.microast import EPS, channel_moments
    net = build(DEFAULT_METHOD, model=default_model() if model == "default" else model).net
    style = load_image(SAMPLES / "starry_night.jpg", long_side=128).image
    photo = load_image(SAMPLES / "chelsea.jpg", long_side=96).image[..., :64, :96]
    signals = net.signals(style)
    seen = []
    handle = net.decoder.block_deep.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        net(photo, signals)
    handle.remove()
    mean, std = channel_moments(seen[0])
    # The photo's own spread is divided by sqrt(variance + EPS), so the target std comes back scaled by that factor.
    own_variance = channel_moments(net.content_encoder(photo)[1])[1].pow(2) - EPS
    expected_std = signals.std_deep * own_variance.sqrt() / (own_variance + EPS).sqrt()
    assert torch.allclose(mean, signals.mean_deep, atol=1e-4) and torch.allclose(std, expected_std, rtol=1e-3)
