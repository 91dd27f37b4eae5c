"""WCT's deep-level numerics and per-level strengths, and Style-Swap's inverse network trained on swapped features."""
import json

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import load_state_dict
from brushstream.core.methods import build
from brushstream.core.ops.patch_swap import style_swap
from brushstream.core.ops.wct import colouring_stats, sym_power, whiten_colour
from brushstream.core.train.data import UNSEEN_STYLES
from brushstream.core.train.loop import fit
from brushstream.core.train.swap_inverse_recipe import SwapInverseRecipe

from .conftest import SHARED_DATA
from .test_deep_arbitrary import _photo

STYLE = SHARED_DATA / "styles" / "starry_night.jpg"


@pytest.fixture(scope="module")
def content():
    return _photo(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg", 96)


@pytest.fixture(scope="module")
def style():
    return _photo(STYLE, 96)


def test_whitening_drops_near_silent_directions_instead_of_lifting_them():
    rotation = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    cov = rotation @ torch.diag(torch.tensor([4.0, 1.0, 1e-9], dtype=torch.float64)) @ rotation.T
    inv_sqrt = sym_power(cov, -0.5, 1e-5)
    silent = rotation[:, 2]
    # The silent direction is zeroed (a clamp to the floor would scale it by 1/sqrt(4e-5) = 158).
    assert (inv_sqrt @ silent).norm() < 1e-6
    torch.testing.assert_close(inv_sqrt @ rotation[:, 0], rotation[:, 0] / 2.0)
    # Damping adds its share of the mean eigenvalue to each before the power.
    mean = (4.0 + 1.0 + 1e-9) / 3
    damped = sym_power(cov, -0.5, 1e-5, damping=0.5)
    torch.testing.assert_close(damped @ rotation[:, 1], rotation[:, 1] * (1.0 + 0.5 * mean) ** -0.5)


def test_whitened_features_keep_no_energy_along_a_direction_the_photo_barely_uses():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(1, 3, 20, 20, generator=gen, dtype=torch.float64)
    base[:, 2] *= 1e-5                     # a channel that is almost constant: noise, not structure
    style = colouring_stats(torch.randn(1, 3, 24, 24, generator=gen, dtype=torch.float64))
    out = whiten_colour(base, style)
    # Only the photo's two live directions are coloured, so the output's covariance has rank two, not three.
    f = out[0].reshape(3, -1)
    vals = torch.linalg.eigvalsh(torch.cov(f))
    assert vals[0] < 1e-6 * vals[-1]


def test_per_level_alphas_blend_each_level_and_reject_a_wrong_count(content, style):
    levels = ("relu3_1", "relu2_1", "relu1_1")
    full = build("wct", levels=levels)
    code = full.encode_style([style])
    off = build("wct", levels=levels, alphas=(0.0, 0.0, 0.0))
    # Every level at alpha 0 is the plain reconstruction cascade, as --strength 0.
    torch.testing.assert_close(off.stylize(content, code), full.stylize(content, code, strength=0.0))
    one_value = build("wct", levels=levels, alphas=(0.5,))
    torch.testing.assert_close(one_value.stylize(content, code), full.stylize(content, code, strength=0.5))
    # Only the deepest level kept: different from all and from none.
    deep_only = build("wct", levels=levels, alphas=(1.0, 0.0, 0.0)).stylize(content, code)
    assert (deep_only - full.stylize(content, code)).abs().mean() > 1e-3
    assert (deep_only - off.stylize(content, code)).abs().mean() > 1e-3
    with pytest.raises(BrushstreamError, match="alphas .* one per level"):
        build("wct", levels=levels, alphas=(1.0, 0.5))


def test_damping_keeps_the_output_nearer_the_photo(content, style):
    levels = ("relu3_1", "relu2_1", "relu1_1")
    plain, damped = build("wct", levels=levels, damping=0.0), build("wct", levels=levels)   # the default damps
    code = plain.encode_style([style])
    a, b = plain.stylize(content, code), damped.stylize(content, code)
    assert (b - content).abs().mean() < (a - content).abs().mean()


def test_the_swap_inverse_trains_on_swapped_features_and_keeps_held_out_styles_out(photos, tmp_path):
    recipe = SwapInverseRecipe(content_dir=str(photos), style_dir=str(SHARED_DATA / "styles"), size=48, batch=4,
                               steps=12, lr=1e-3, swapped_fraction=0.5, style_size=96)
    out = tmp_path / "inverse.safetensors"
    result = fit(recipe, out, progress=False)
    # The decoder is handed style-swapped maps for half the batch: exactly the swap of a style crop's patches.
    content = torch.rand(4, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    rng = torch.Generator().manual_seed(5)
    psi, swapped = recipe._inputs(content, rng)
    assert swapped.tolist() == [True, True, False, False]
    own = recipe._features(content)
    torch.testing.assert_close(psi[2:], own[2:])
    assert (psi[:2] - own[:2]).abs().mean() > 0.1 * own[:2].abs().mean()
    # A swapped map is made of the style's patches: swapping it again with itself changes nothing.
    torch.testing.assert_close(style_swap(psi[:1], psi[:1], 3), psi[:1], atol=1e-4, rtol=1e-4)
    features = [h["feature"] for h in result.history]
    assert sum(features[-3:]) < sum(features[:3])
    meta = load_state_dict(out)[1]
    trained, held = json.loads(meta["styles"]), json.loads(meta["held_out"])
    assert set(held) == set(UNSEEN_STYLES) and not set(held) & set(trained)
    assert meta["trained_for"] == "swap" and meta["level"] == "relu3_1"
    swap = build("swap", decoder=str(out))
    assert swap.decoder.level == "relu3_1"


def test_style_swap_reads_its_inverse_network_from_the_option(tmp_path, content, style):
    plain = build("swap")
    code = plain.encode_style([style])
    # A decoder with other weights gives another picture: the option reaches the network.
    state = {k: v * 0.5 for k, v in plain.decoder.state_dict().items()}
    from safetensors.torch import save_file
    path = tmp_path / "half.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path),
              metadata={"arch": "vgg_decoder", "level": "relu3_1", "width": "1.0"})
    other = build("swap", decoder=str(path))
    assert (other.stylize(content, code) - plain.stylize(content, code)).abs().mean() > 1e-3


def test_wct_masks_give_each_region_its_own_style(content, style):
    other = _photo(SHARED_DATA / "styles" / "mosaic.jpg", 96)
    wct = build("wct", levels=("relu3_1", "relu2_1", "relu1_1"))
    both = wct.encode_style([style, other])
    ones = torch.ones(1, 1, *content.shape[-2:])
    # A mask over everything is the first style alone, an empty one the second alone.
    torch.testing.assert_close(wct.stylize(content, both, mask=ones), wct.stylize(content, wct.encode_style([style])))
    torch.testing.assert_close(wct.stylize(content, both, mask=0 * ones),
                               wct.stylize(content, wct.encode_style([other])))
    half = ones.clone()
    half[..., content.shape[-1] // 2:] = 0
    split = wct.stylize(content, both, mask=half)
    first, second = wct.stylize(content, wct.encode_style([style])), wct.stylize(content, wct.encode_style([other]))
    left, right = slice(0, content.shape[-1] // 2 - 8), slice(content.shape[-1] // 2 + 8, None)
    assert (split[..., left] - first[..., left]).abs().mean() < (split[..., left] - second[..., left]).abs().mean()
    assert (split[..., right] - second[..., right]).abs().mean() < (split[..., right] - first[..., right]).abs().mean()


def test_style_swap_decodes_with_the_bundled_inverse_network_by_default():
    from brushstream.core.hub.weights import resolve
    tensors, meta = load_state_dict(resolve("swap_inverse_r31"))
    assert meta["trained_for"] == "swap" and meta["level"] == "relu3_1"
    default = build("swap").decoder
    torch.testing.assert_close(default.conv7.weight, tensors["conv7.weight"].float())
    plain = build("swap", decoder="vgg19_normalised_r31_decoder").decoder
    assert (default.conv7.weight - plain.conv7.weight).abs().max() > 1e-4


def test_a_share_above_one_is_refused_by_the_recipe_check():
    with pytest.raises(BrushstreamError, match="--swapped-fraction must be at most 1, got 1.5"):
        SwapInverseRecipe(swapped_fraction=1.5).check()
    SwapInverseRecipe(swapped_fraction=1.0).check()
