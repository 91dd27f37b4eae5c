"""MicroAST (Wang et al. 2023): the dual modulation's maths on toy tensors, then the bundled official weights through the
registry, offline, on the bundled sample pictures (no data beside the repository needed)."""
import dataclasses
import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub import weights as weight_store
from brushstream.core.io.image import load_image
from brushstream.core.methods import build
from brushstream.core.nets.microast import (
    CHANNELS,
    EPS,
    ResBlock,
    Signals,
    channel_moments,
    modulate_features,
    modulated_conv,
)

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"


def _signals(seed: int, batch: int = 1) -> Signals:
    """Random but plausible signals: positive stds, scales around 1, small shifts."""
    g = torch.Generator().manual_seed(seed)

    def r(lo, hi):
        return lo + (hi - lo) * torch.rand(batch, CHANNELS, 1, 1, generator=g)
    return Signals(mean_deep=r(-1, 1), std_deep=r(0.2, 2), scale_deep=r(0.5, 1.5), shift_deep=r(-0.3, 0.3),
                   mean_shallow=r(-1, 1), std_shallow=r(0.2, 2), scale_shallow=r(0.5, 1.5), shift_shallow=r(-0.3, 0.3))


@pytest.fixture(scope="module")
def microast():
    return build("microast", model="microast_official")


@pytest.fixture(scope="module")
def chelsea():
    return load_image(SAMPLES / "chelsea.jpg").image        # 451x300: not a multiple of the stride


@pytest.fixture(scope="module")
def starry():
    return load_image(SAMPLES / "starry_night.jpg", long_side=256).image


# -- (a) feature modulation ----------------------------------------------------------------------------------

def test_feature_modulation_gives_the_features_the_target_channel_mean_and_std():
    g = torch.Generator().manual_seed(1)
    x = 3 * torch.randn(2, 8, 12, 10, generator=g) + 5
    mean, std = torch.randn(2, 8, 1, 1, generator=g), torch.rand(2, 8, 1, 1, generator=g) + 0.5
    got_mean, got_std = channel_moments(modulate_features(x, mean, std))
    torch.testing.assert_close(got_mean, mean, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_std, std, atol=1e-4, rtol=1e-4)


def test_the_decoder_blocks_read_features_with_the_signals_statistics(microast, chelsea):
    """Inside the trained decoder, on a photo: what enters each residual block carries that level's target mean and
    std. Exactly so up to the 1e-5 the statistics add to the variance, which is accounted for from the variance v of
    the features before modulation (the photo has some channels whose v is not far above it)."""
    net, seen = microast.net, {}

    def keep(name, value):
        seen[name] = value[1] if isinstance(value, tuple) else value
    hooks = [net.decoder.block_deep.register_forward_pre_hook(lambda m, a: keep("in_deep", a[0])),
             net.decoder.block_shallow.register_forward_pre_hook(lambda m, a: keep("in_shallow", a[0])),
             net.content_encoder.register_forward_hook(lambda m, a, out: keep("before_deep", out)),
             net.decoder.block_deep.register_forward_hook(lambda m, a, out: keep("before_shallow", out))]
    s = _signals(2)
    try:
        with torch.no_grad():
            net(chelsea[..., :96, :128], s)
    finally:
        for h in hooks:
            h.remove()
    for level, mean, std in (("deep", s.mean_deep, s.std_deep), ("shallow", s.mean_shallow, s.std_shallow)):
        got_mean, got_std = channel_moments(seen[f"in_{level}"])
        v = seen[f"before_{level}"].var(dim=(2, 3), keepdim=True)
        torch.testing.assert_close(got_mean, mean, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got_std, (std ** 2 * v / (v + EPS) + EPS).sqrt(), atol=1e-4, rtol=1e-4)


# -- (b) filter modulation -----------------------------------------------------------------------------------

def test_filter_modulation_is_the_convolution_with_the_modulated_kernel():
    torch.manual_seed(3)
    block = ResBlock(6)
    conv, x = block.conv_a, torch.randn(2, 6, 9, 11)
    scale, shift = torch.rand(2, 6, 1, 1) + 0.5, torch.randn(2, 6, 1, 1)
    with torch.no_grad():
        identity = torch.zeros_like(conv.weight)
        identity[range(6), range(6), 1, 1] = 1.0
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        explicit = torch.cat([F.conv2d(padded[i:i + 1], scale[i].view(6, 1, 1, 1) * conv.weight
                                       + shift[i].view(6, 1, 1, 1) * identity, scale[i].view(6) * conv.bias)
                              for i in range(2)])
        torch.testing.assert_close(modulated_conv(conv, x, scale, shift), explicit, atol=1e-5, rtol=1e-5)
        # The identity signal (scale 1, shift 0) leaves the convolution as it is.
        assert torch.equal(modulated_conv(conv, x, torch.ones(1, 6, 1, 1), torch.zeros(1, 6, 1, 1)), conv(x))
        assert torch.equal(block(x, torch.ones(1, 6, 1, 1), torch.zeros(1, 6, 1, 1)), block(x))


def test_two_filter_signals_give_two_pictures_of_the_same_content(microast, chelsea, starry):
    """Signals that differ only in their filter scale and shift (same feature statistics) change the picture."""
    net = microast.net
    with torch.no_grad():
        a = net.signals(starry)
        b = dataclasses.replace(a, **{n: getattr(net.signals(chelsea), n)
                                      for n in ("scale_deep", "shift_deep", "scale_shallow", "shift_shallow")})
        content = chelsea[..., :96, :128]
        out_a, out_b = net(content, a).clamp(0, 1), net(content, b).clamp(0, 1)
    assert (out_a - out_b).abs().mean() > 0.02


# -- (c) the bundled official weights, offline ---------------------------------------------------------------

def test_bundled_weights_load_offline_and_stylize_the_sample(monkeypatch, chelsea, starry):
    monkeypatch.delenv(weight_store.ENV_DIR, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("MicroAST tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert weight_store.resolve("microast_official").parent == weight_store.BUNDLED_DIR
    model = build("microast", model="microast_official")
    out = model.stylize(chelsea, model.encode_style(starry))
    assert out.shape == chelsea.shape and torch.isfinite(out).all()
    assert 0 <= out.min() and out.max() <= 1
    assert (out - chelsea).abs().mean() > 0.1       # painted, not the photo back (measured 0.17)


def test_bad_weights_are_one_line_errors_naming_the_file(tmp_path):
    with pytest.raises(BrushstreamError, match="lst_r31: holds a lst_transform network, not microast") as err:
        build("microast", model="lst_r31")
    assert "\n" not in str(err.value)
    with pytest.raises(BrushstreamError, match="no such weights file"):
        build("microast", model=str(tmp_path / "missing.safetensors"))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(BrushstreamError, match="junk.safetensors: not a valid safetensors file"):
        build("microast", model=str(junk))


# -- (d) one style code, many pictures -----------------------------------------------------------------------

def test_a_style_code_made_once_gives_the_same_picture_every_time(microast, chelsea, starry):
    code = microast.encode_style(starry)
    first = microast.stylize(chelsea, code)
    second = microast.stylize(chelsea, code)
    assert torch.equal(first, second)
    torch.testing.assert_close(microast.stylize(chelsea, microast.encode_style(starry)), first)


# -- (e) strength ---------------------------------------------------------------------------------------------

def test_strength_zero_is_the_content_as_its_own_style_whatever_the_style(microast, chelsea, starry):
    small = chelsea[..., :128, :192]
    code = microast.encode_style(starry)
    other = microast.encode_style(torch.flip(starry, dims=(-1,)).roll(37, dims=-2) * 0.6)
    zero = microast.stylize(small, code, strength=0.0)
    # What the method defines for no style: the content stylized with itself (so no style reaches the picture).
    torch.testing.assert_close(zero, microast.stylize(small, microast.encode_style(small)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(microast.stylize(small, other, strength=0.0), zero, atol=1e-5, rtol=1e-5)
    full = microast.stylize(small, code)
    half = microast.stylize(small, code, strength=0.5)
    d_zero, d_half, d_full = ((x - small).abs().mean() for x in (zero, half, full))
    assert d_zero < 0.5 * d_full and d_zero < 0.06    # close to the photo (measured 0.04 against 0.17 at strength 1)
    assert d_zero < d_half < d_full                   # and strength moves it steadily toward the style
