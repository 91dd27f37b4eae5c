"""Style methods with the real bundled networks, on small real photos (fast on 2 CPU cores)."""
import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.io.image import load_image
from brushstream.core.methods import available, build
from brushstream.core.ops.resize import resize_long_side
from brushstream.core.ops.stats import gram, mean_std

from .conftest import SHARED_DATA


def _photo(name, size):
    return resize_long_side(load_image(name).image, size)


@pytest.fixture(scope="module")
def content():
    return _photo(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg", 96)


@pytest.fixture(scope="module")
def styles():
    return [_photo(SHARED_DATA / "styles" / n, 128) for n in ("starry_night.jpg", "the_great_wave.jpg")]


@pytest.fixture(scope="module")
def adain():
    return build("adain")


def _encode(model, x):
    """relu3_1 features of the normalised VGG19, whichever method holds the encoder."""
    encoder = model.encoders["vgg19n"] if hasattr(model, "encoders") else model.encoder
    return encoder(x, ("relu3_1",))["relu3_1"]


def _gram_dist(model, image, style):
    return float((gram(_encode(model, image)) - gram(_encode(model, style))).norm() / gram(_encode(model, style)).norm())


def test_registry_lists_every_still_method():
    assert {"adain", "wct", "swap", "gatys"} <= set(available())
    with pytest.raises(BrushstreamError, match="unknown method 'nope'"):
        build("nope")


def test_adain_target_features_carry_the_style_mean_and_std(adain, content, styles):
    code = adain.encode_style(styles, [0.3, 0.7])
    t = adain.transfer(_encode(adain, content), code)
    means, stds = zip(*(mean_std(_encode(adain, s)) for s in styles))
    t_mean, t_std = mean_std(t)
    torch.testing.assert_close(t_mean, 0.3 * means[0] + 0.7 * means[1], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(t_std, 0.3 * stds[0] + 0.7 * stds[1], atol=1e-3, rtol=1e-3)


def test_adain_output_moves_towards_style_statistics(adain, content, styles):
    code = adain.encode_style([styles[0]])
    out = adain.stylize(content, code)
    assert out.shape == content.shape and 0 <= out.min() and out.max() <= 1
    s_mean, s_std = mean_std(_encode(adain, styles[0]))
    c_mean, c_std = mean_std(_encode(adain, content))
    o_mean, o_std = mean_std(_encode(adain, out))
    # after decoding and re-encoding, the image is much closer to the style's statistics than the photo was
    assert (o_mean - s_mean).norm() < 0.7 * (c_mean - s_mean).norm()
    assert (o_std - s_std).norm() < 0.7 * (c_std - s_std).norm()


def test_the_default_adain_decoder_paints_the_style_the_reconstruction_decoder_does_not(adain, content, styles):
    # The default relu3_1 decoder was trained with the style loss: through the same encoder and AdaIN target, its
    # output's Gram matrices sit nearer the style's than the reconstruction decoder's output.
    recon = build("adain", decoder="vgg19_normalised_r31_decoder")
    for style in styles:
        trained = _gram_dist(adain, adain.stylize(content, adain.encode_style([style])), style)
        rebuilt = _gram_dist(recon, recon.stylize(content, recon.encode_style([style])), style)
        assert trained < 0.8 * rebuilt


def test_adain_strength_zero_reconstructs_the_content(adain, content, styles):
    # With the reconstruction decoder, strength 0 gives the photo back (~25 dB on a tiny image).
    recon = build("adain", decoder="vgg19_normalised_r31_decoder")
    out = recon.stylize(content, recon.encode_style([styles[0]]), strength=0.0)
    assert torch.mean((out - content) ** 2).item() < 0.01
    # The default, style-trained decoder paints a little even then (18 dB), but stays far nearer the photo than at
    # full style.
    code = adain.encode_style([styles[0]])
    none, full = (torch.mean((adain.stylize(content, code, strength=a) - content) ** 2).item() for a in (0.0, 1.0))
    assert none < 0.02 and none < 0.5 * full   # measured: 0.0145 against 0.047


def test_adain_blend_weights_and_mask(adain, content, styles):
    single = adain.stylize(content, adain.encode_style([styles[0]]))
    one_hot = adain.stylize(content, adain.encode_style(styles, [1.0, 0.0]))
    torch.testing.assert_close(single, one_hot, atol=1e-5, rtol=1e-5)
    mixed = adain.stylize(content, adain.encode_style(styles, [0.5, 0.5]))
    assert (mixed - single).abs().mean() > 0.01
    code2 = adain.encode_style(styles)
    full_fg = adain.stylize(content, code2, mask=torch.ones(1, 1, *content.shape[-2:]))
    torch.testing.assert_close(full_fg, single, atol=1e-4, rtol=1e-4)
    half = torch.zeros(1, 1, *content.shape[-2:])
    half[..., :, : content.shape[-1] // 2] = 1
    split = adain.stylize(content, code2, mask=half)
    second = adain.stylize(content, adain.encode_style([styles[1]]))
    w = content.shape[-1]
    # left half follows style 1, right half style 2 (away from the seam)
    left, right = (..., slice(None, w // 4)), (..., slice(-w // 4, None))
    assert (split[left] - single[left]).abs().mean() < (split[left] - second[left]).abs().mean()
    assert (split[right] - second[right]).abs().mean() < (split[right] - single[right]).abs().mean()


def test_adain_odd_sizes_come_back_unchanged_in_size(adain, styles):
    x = torch.rand(1, 3, 37, 53)
    assert adain.stylize(x, adain.encode_style([styles[0]])).shape == x.shape


def test_preserve_color_keeps_the_content_hue(adain, content, styles):
    code = adain.encode_style([styles[0]])
    plain = adain.stylize(content, code)
    kept = adain.stylize(content, code, preserve_color=True)
    c_mean = content.mean(dim=(2, 3))
    assert (kept.mean(dim=(2, 3)) - c_mean).norm() < (plain.mean(dim=(2, 3)) - c_mean).norm()


def test_wct_transform_colours_features_with_the_style_covariance(content, styles):
    wct = build("wct", levels=("relu3_1",), damping=0.0)   # undamped: the paper's exact transform
    code = wct.encode_style([styles[0]])
    out = wct.stylize(content, code)
    # each level of the cascade moves the result closer to the style than single-level AdaIN-like stats
    assert _gram_dist(wct, out, styles[0]) < 0.6 * _gram_dist(wct, content, styles[0])


def test_wct_cascade_uses_every_level_and_beats_the_single_level(content, styles):
    single = build("wct", levels=("relu3_1",))
    cascade = build("wct")
    assert cascade.levels == ("relu3_1", "relu2_1", "relu1_1")
    out1 = single.stylize(content, single.encode_style([styles[0]]))
    out3 = cascade.stylize(content, cascade.encode_style([styles[0]]))
    assert (out1 - out3).abs().mean() > 0.005
    assert _gram_dist(cascade, out3, styles[0]) < _gram_dist(cascade, content, styles[0])


def test_wct_texture_synthesis_from_noise(styles):
    wct = build("wct", levels=("relu3_1",))
    code = wct.encode_style([styles[1]])
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    texture = wct.synthesize(code, (64, 64), iterations=2, seed=0)
    assert texture.shape == (1, 3, 64, 64)
    assert _gram_dist(wct, texture, styles[1]) < 0.5 * _gram_dist(wct, noise, styles[1])


def test_style_swap_uses_style_patches_and_honours_patch_size(content, styles):
    swap = build("swap")
    out = swap.stylize(content, swap.encode_style([styles[0]]))
    assert out.shape == content.shape
    assert _gram_dist(swap, out, styles[0]) < 0.8 * _gram_dist(swap, content, styles[0])
    swap5 = build("swap", patch_size=5, chunk=64)  # small bands: bounded memory path
    out5 = swap5.stylize(content, swap5.encode_style([styles[0]]))
    assert (out5 - out).abs().mean() > 0.005


def test_gatys_lowers_style_distance_and_is_deterministic(styles):
    from brushstream.core.metrics import QualityMetrics

    content = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.25
    style = resize_long_side(styles[0], 64)
    gatys = build("gatys", steps=8, progress=False, style_layers=("relu1_1", "relu2_1", "relu3_1"))
    code = gatys.encode_style([style])
    out = gatys.stylize(content, code)
    again = gatys.stylize(content, code)
    torch.testing.assert_close(out, again)
    metrics = QualityMetrics()
    targets = metrics.style_targets(style)
    result = metrics.evaluate(out, content, targets)
    assert result["gram_ratio"] < 0.8
    adam = build("gatys", steps=8, optimizer="adam", lr=0.05, init="noise", scales=(0.5, 1.0), progress=False,
                 style_layers=("relu1_1", "relu2_1"))
    out_adam = adam.stylize(content, adam.encode_style([style]))
    assert out_adam.shape == content.shape


def test_memory_budget_refuses_clearly(adain, styles):
    adain_small = build("adain")
    adain_small.max_pixels = 64 * 64
    with pytest.raises(BrushstreamError, match="memory budget"):
        adain_small.stylize(torch.rand(1, 3, 100, 100), adain.encode_style([styles[0]]))


def test_bf16_precision_gives_the_same_picture(adain, content, styles):
    code = adain.encode_style([styles[0]])
    full = adain.stylize(content, code)
    half = adain.stylize(content, code, precision="bf16")
    assert half.dtype == torch.float32 and half.shape == full.shape
    assert (half - full).abs().mean() < 0.01
    with pytest.raises(BrushstreamError, match=r"precision \(--precision\) must be one of fp32, bf16"):
        adain.stylize(content, code, precision="fp8")


# -- behaviours that once could vanish with the suite still green (each test names what it guards) -------

def _content_gap(out, content):
    return float((out - content).abs().mean())


@pytest.mark.parametrize("method, options", [("wct", {"levels": ("relu3_1",)}), ("swap", {})])
def test_strength_moves_the_output_between_content_and_style(method, options, content, styles):
    """Guards: WCT ignores strength; Style-Swap ignores strength."""
    model = build(method, **options)
    code = model.encode_style([styles[0]])
    outs = {s: model.stylize(content, code, strength=s) for s in (0.0, 0.5, 1.0)}
    gaps = [_content_gap(outs[s], content) for s in (0.0, 0.5, 1.0)]
    styled = [_gram_dist(model, outs[s], styles[0]) for s in (0.0, 0.5, 1.0)]
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert styled[0] > styled[1] > styled[2], styled


@pytest.mark.parametrize("method, options", [("wct", {"levels": ("relu3_1",)}), ("swap", {})])
def test_blend_weights_select_and_mix_the_styles(method, options, content, styles):
    """Guards: WCT ignores blend weights; Style-Swap uses only the first style."""
    model = build(method, **options)
    first = model.stylize(content, model.encode_style([styles[0]]))
    second = model.stylize(content, model.encode_style([styles[1]]))
    assert _content_gap(first, second) > 0.02
    torch.testing.assert_close(model.stylize(content, model.encode_style(styles, [0.0, 1.0])), second,
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(model.stylize(content, model.encode_style(styles, [1.0, 0.0])), first,
                               atol=1e-4, rtol=1e-4)
    mixed = model.stylize(content, model.encode_style(styles, [0.5, 0.5]))
    assert _content_gap(mixed, first) > 0.005 and _content_gap(mixed, second) > 0.005


def test_gatys_adam_lowers_the_loss(styles):
    """Guards: Gatys' Adam path never calls opt.step()."""
    content = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2)) * 0.5 + 0.25
    gatys = build("gatys", steps=12, optimizer="adam", lr=0.05, scales=(1.0,), progress=False,
                  style_layers=("relu1_1", "relu2_1"))
    out = gatys.stylize(content, gatys.encode_style([resize_long_side(styles[0], 64)]))
    losses = gatys.loss_history
    assert len(losses) == 12 and losses[-1] < 0.7 * losses[0], losses
    assert _content_gap(out, content) > 0.01


def test_gatys_lbfgs_honours_steps(styles):
    code_style = [resize_long_side(styles[0], 64)]
    content = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    runs = {}
    for steps in (2, 10):
        model = build("gatys", steps=steps, scales=(1.0,), progress=False, style_layers=("relu1_1", "relu2_1"))
        model.stylize(content, model.encode_style(code_style))
        runs[steps] = model.loss_history
    assert len(runs[10]) > len(runs[2]) and min(runs[10]) < min(runs[2])


def test_the_evaluation_runner_applies_its_strength(adain, content, styles):
    from brushstream.core.evaluate import method_runner
    code = adain.encode_style([styles[0]])
    half = method_runner(adain, strength=0.5)(content, styles[0])
    assert torch.allclose(half, adain.stylize(content, code, strength=0.5), atol=1e-5)
    assert not torch.allclose(half, method_runner(adain)(content, styles[0]), atol=1e-3)


def test_a_resumed_evaluation_reruns_only_the_pictures_its_sheet_shows():
    from brushstream.core.evaluate import evaluate
    from brushstream.core.metrics import QualityMetrics

    from .conftest import SHARED_DATA
    photos = sorted((SHARED_DATA / "content_eval").glob("*.jpg"))[:3]
    styles = [SHARED_DATA / "styles" / "starry_night.jpg"]
    calls = []

    def darken(content, style):
        calls.append(content.shape)
        return content * 0.5

    metrics = QualityMetrics()
    report, outputs, _ = evaluate({"dark": darken}, photos, styles, 48, metrics=metrics)
    assert len(calls) == 3 and len(outputs) == 3
    calls.clear()
    report, outputs, _ = evaluate({"dark": darken}, photos, styles, 48, report, keep_outputs={photos[0].name},
                                  metrics=metrics)
    assert len(calls) == 1 and list(outputs) == [(photos[0].name, styles[0].name, "dark")]
    calls.clear()
    evaluate({"dark": darken}, photos, styles, 48, report, keep_outputs=False, metrics=metrics)
    assert calls == [] and len(report["methods"]["dark"]) == 3


def test_the_photo_side_of_a_comparison_is_measured_once_and_changes_nothing(styles):
    """Several methods judged on one photo: its own style distance and content features are computed once, and every
    figure equals what a fresh metrics object gives."""
    from brushstream.core.metrics import QualityMetrics

    g = torch.Generator().manual_seed(4)
    photo = torch.rand(1, 3, 48, 64, generator=g)
    outputs = [torch.rand(1, 3, 48, 64, generator=g) for _ in range(3)]
    other_style = resize_long_side(styles[1], 64)
    metrics = QualityMetrics()
    targets = [metrics.style_targets(resize_long_side(styles[0], 64)), metrics.style_targets(other_style)]
    seen = []
    real_vgg = metrics.vgg
    metrics.vgg = lambda x, layers: seen.append(x) or real_vgg(x, layers)
    figures = [metrics.evaluate(out, photo.clone(), t) for t in targets for out in outputs]
    photo_passes = sum(1 for x in seen if torch.equal(x, photo))
    assert photo_passes == 1 + len(targets)   # its content features once, its distance once per style
    fresh = [QualityMetrics().evaluate(out, photo, t) for t in targets for out in outputs]
    assert figures == fresh
