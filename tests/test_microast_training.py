"""MicroAST's training recipe: style augmentation, each image scored against its own style crop, held-out styles kept
out, the loss falling on a tiny set, and a trained file the method loads."""
import json
import shutil

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import load_state_dict
from brushstream.core.methods import build
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.data import UNSEEN_STYLES
from brushstream.core.train.loop import fit
from brushstream.core.train.losses import luminance
from brushstream.core.train.microast_recipe import turn_hue
from brushstream.core.train.perceptual import pick_styles

from .conftest import SHARED_DATA

STYLES = SHARED_DATA / "styles"


def test_a_hue_turn_changes_the_palette_and_keeps_light_and_dark():
    x = torch.rand(1, 3, 16, 16) * 0.2 + 0.4   # muted colours: every turn stays inside the RGB cube
    turned = turn_hue(x, 120.0)
    assert torch.allclose(luminance(turned), luminance(x), atol=1e-5)
    assert (turned - x).abs().mean() > 0.01
    assert torch.allclose(turn_hue(x, 360.0), x, atol=1e-5)
    assert torch.allclose(turn_hue(turn_hue(x, 70.0), -70.0), x, atol=1e-5)


@pytest.fixture
def style_folder(tmp_path):
    folder = tmp_path / "styles"
    folder.mkdir()
    for name in ("starry_night", "udnie", "mondrian", UNSEEN_STYLES[0], UNSEEN_STYLES[1]):
        shutil.copy(STYLES / f"{name}.jpg", folder)
    return folder


def test_held_out_styles_never_reach_training(style_folder):
    recipe = get_recipe("microast")(style_dir=str(style_folder), style_size=64, size=32)
    recipe.setup(torch.device("cpu"))
    assert sorted(recipe.style_names()) == ["mondrian", "starry_night", "udnie"]
    everything = get_recipe("microast")(style_dir=str(style_folder), style_size=64, size=32, held_out=())
    everything.setup(torch.device("cpu"))
    assert len(everything.style_names()) == 5


def test_each_image_is_painted_with_and_scored_against_its_own_style_crop(style_folder, monkeypatch):
    recipe = get_recipe("microast")(style_dir=str(style_folder), style_size=96, size=32, batch=4, style_jitter=1.0)
    recipe.setup(torch.device("cpu"))
    seen, scored = [], []
    real_grams = recipe.loss_net.style_grams
    monkeypatch.setattr(recipe.loss_net, "style_grams", lambda crops: scored.append(crops) or real_grams(crops))

    def model(content, style):
        seen.append(style)
        return content * 0.5
    recipe.losses(model, torch.rand(4, 3, 32, 32), 0, torch.Generator().manual_seed(3))
    assert seen[0] is scored[0] and seen[0].shape == (4, 3, 32, 32)
    # The crops are those of the drawn styles, in the drawn order, from the same random stream.
    rng = torch.Generator().manual_seed(3)
    drawn = pick_styles(rng, 3, 4, 4, True)
    assert torch.equal(recipe.style_crops(drawn, rng), seen[0])
    # Jitter on: every crop's palette is turned, so no crop is a plain crop of its style at any place.
    plain = get_recipe("microast")(style_dir=str(style_folder), style_size=96, size=32, batch=4, style_jitter=0.0)
    plain.setup(torch.device("cpu"))
    rng = torch.Generator().manual_seed(3)
    drawn = pick_styles(rng, 3, 4, 4, True)
    assert not torch.allclose(plain.style_crops(drawn, rng), seen[0], atol=1e-3)


def test_bad_jitter_and_zoom_are_one_line_errors(style_folder):
    with pytest.raises(BrushstreamError, match="--style-jitter"):
        get_recipe("microast")(style_dir=str(style_folder), style_jitter=1.5).check()
    with pytest.raises(BrushstreamError, match="--style-zoom"):
        get_recipe("microast")(style_dir=str(style_folder), style_zoom=(2.0, 1.0)).check()


def test_the_loss_falls_on_a_tiny_set_and_the_method_loads_the_file(photos, style_folder, tmp_path):
    recipe = get_recipe("microast")(content_dir=str(photos), style_dir=str(style_folder), size=48, style_size=96,
                                    steps=40, batch=2, lr=2e-3, style_jitter=0.0, style_zoom=(1.0, 1.0))
    result = fit(recipe, tmp_path / "m.safetensors", progress=False)
    totals = [h["total"] for h in result.history]
    assert sum(totals[-5:]) < 0.6 * sum(totals[:5])
    _, meta = load_state_dict(result.output)
    assert meta["arch"] == "microast" and json.loads(meta["held_out"]) == list(UNSEEN_STYLES)
    assert sorted(json.loads(meta["styles"])) == ["mondrian", "starry_night", "udnie"]
    method = build("microast", model=str(result.output))
    out = method.stylize(torch.rand(1, 3, 48, 64), method.encode_style([torch.rand(1, 3, 64, 64)]))
    assert out.shape == (1, 3, 48, 64) and torch.isfinite(out).all()
