"""MicroAST: Wang, Zhao, Zuo, Li, Chen, Xing & Lu, "MicroAST: Towards Super-Fast Ultra-Resolution Arbitrary Style
Transfer", AAAI 2023 (arXiv 2211.15313).

Arbitrary style transfer with no VGG at inference: a micro content encoder keeps the photo's structure, a micro style
encoder of the same shape and a modulator turn the style image into dual modulation signals, and a micro decoder
paints with them. The signals act twice in each of the decoder's two residual blocks:

* feature modulation: before the block, the features take the style features' per-channel mean and std (AdaIN-like;
  the deep style features before the first block, the shallow ones before the second);
* filter modulation: each 3x3 convolution of the block runs with its filter modulated by a per-channel (scale,
  shift) pair, which the modulator pools from the style features (depthwise 3x3 convolution, then a global mean).

The whole style side is one small forward pass (:meth:`MicroAST.signals`), so a style becomes a handful of
(1, 64, 1, 1) vectors once and every frame costs only the content encoder and the decoder.

The layer layout follows the official release (EndyWon/MicroAST, MIT, slim factor 1: widths 16/32/64) exactly, so its
weights load after a key renaming (tools/convert_microast.py); the feature statistics use the release's unbiased
variance plus 1e-5, not the biased variance of core/ops/stats.py, so the outputs match it (bench/microast_parity.py).
No deviation in the network; the strength control differs from the release's alpha and is described in
core/methods/microast.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.adain import adain
from ..ops.stats import mean_std

EPS = 1e-5      # added to the variance, as in the release's statistics
CHANNELS = 64   # width of both encoders' outputs and of the decoder's residual blocks
STRIDE = 4      # two stride-2 layers down in the encoders, two 2x upsamplings in the decoder


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    # Reflection padding everywhere (the release's choice): no dark seams along the borders, and the stride-2 layers
    # see mirrored context instead of zeros.
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, padding_mode="reflect")


def channel_moments(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over space, (B, C, 1, 1); unbiased variance, as the weights were trained with."""
    return mean_std(x, eps, unbiased=True)


def modulate_features(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Feature modulation: AdaIN of ``x`` to the target ``mean`` and ``std`` (MicroAST's unbiased statistics)."""
    return adain(x, mean, std, eps=EPS, unbiased=True)


def modulated_conv(conv: nn.Conv2d, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Filter modulation of a same-size, same-width convolution.

    Convolving with the modulated kernel ``scale * W + shift * I`` (``I``: the identity kernel, a 1 at the centre tap
    of each channel's own input) and bias ``scale * b`` is ``scale * conv(x) + shift * x``, since the centre tap of a
    same-padded convolution reads the input at the output's own position. Computed that way, one kernel serves the
    whole batch instead of one modulated kernel per image. ``scale`` = 1, ``shift`` = 0 leaves ``conv`` unchanged.
    """
    return torch.addcmul(shift * x, conv(x), scale)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a ReLU between them and a skip connection; optionally filter-modulated."""

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.conv_a = _conv(channels, channels, 3)
        self.conv_b = _conv(channels, channels, 3)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None,
                shift: torch.Tensor | None = None) -> torch.Tensor:
        if scale is None or shift is None:   # the encoders' blocks: plain convolutions
            return x + self.conv_b(F.relu(self.conv_a(x)))
        # The decoder's blocks: both convolutions take the same (scale, shift) pair.
        h = F.relu(modulated_conv(self.conv_a, x, scale, shift))
        return x + modulated_conv(self.conv_b, h, scale, shift)


class MicroEncoder(nn.Module):
    """RGB 0-1 -> (shallow, deep) features, both 64 channels at a quarter of the input's size.

    Cheap by construction: one 9x9 convolution at full size, then depthwise 3x3 (stride 2) and pointwise 1x1 pairs
    in place of full 3x3 convolutions, then two residual blocks whose outputs are the two feature levels.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.ModuleList([
            _conv(3, 16, 9),
            _conv(16, 32, 3, stride=2, groups=16),
            _conv(32, 32, 1),
            _conv(32, CHANNELS, 3, stride=2, groups=32),
            _conv(CHANNELS, CHANNELS, 1),
        ])
        self.block1 = ResBlock()
        self.block2 = ResBlock()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.stem:
            x = F.relu(conv(x))
        shallow = self.block1(x)
        return shallow, self.block2(shallow)


@dataclass
class Signals:
    """A style's dual modulation signals, each (B, 64, 1, 1): what a style code holds.

    ``*_deep`` act in the decoder's first block and come from the style encoder's deep features, ``*_shallow`` in the
    second block, from its shallow ones. Mean and std drive feature modulation, scale and shift filter modulation.
    """
    mean_deep: torch.Tensor
    std_deep: torch.Tensor
    scale_deep: torch.Tensor
    shift_deep: torch.Tensor
    mean_shallow: torch.Tensor
    std_shallow: torch.Tensor
    scale_shallow: torch.Tensor
    shift_shallow: torch.Tensor


def mix_signals(signals: Sequence[Signals], weights: Sequence[float]) -> Signals:
    """The weighted sum of several signal sets, field by field (weights as given; callers normalise them)."""
    if len(signals) != len(weights) or not signals:
        raise ValueError("mix_signals needs one weight per signal set")
    if len(signals) == 1 and weights[0] == 1.0:
        return signals[0]
    fields = [f.name for f in dataclasses.fields(Signals)]
    return Signals(**{n: sum(w * getattr(s, n) for s, w in zip(signals, weights)) for n in fields})


class Modulator(nn.Module):
    """Style features -> the filter-modulation (scale, shift) pairs: a depthwise 3x3 convolution each, globally pooled."""

    def __init__(self, channels: int = CHANNELS):
        super().__init__()
        self.scale_shallow = _conv(channels, channels, 3, groups=channels)
        self.shift_shallow = _conv(channels, channels, 3, groups=channels)
        self.scale_deep = _conv(channels, channels, 3, groups=channels)
        self.shift_deep = _conv(channels, channels, 3, groups=channels)

    def forward(self, shallow: torch.Tensor, deep: torch.Tensor) -> dict[str, torch.Tensor]:
        def pooled(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
            return conv(x).mean(dim=(2, 3), keepdim=True)
        return {"scale_shallow": pooled(self.scale_shallow, shallow), "shift_shallow": pooled(self.shift_shallow, shallow),
                "scale_deep": pooled(self.scale_deep, deep), "shift_deep": pooled(self.shift_deep, deep)}


class MicroDecoder(nn.Module):
    """Deep content features + signals -> RGB (not clamped), at 4x the features' size."""

    def __init__(self):
        super().__init__()
        self.block_deep = ResBlock()
        self.block_shallow = ResBlock()
        # Each 2x bilinear upsampling is followed by a grouped 3x3 (two input channels per output channel, halving the
        # width) and a pointwise 1x1, as in the encoders' stem in reverse.
        self.up = nn.ModuleList([
            _conv(CHANNELS, 32, 3, groups=32),
            _conv(32, 32, 1),
            _conv(32, 16, 3, groups=16),
            _conv(16, 16, 1),
        ])
        self.out = _conv(16, 3, 9)

    def forward(self, content: torch.Tensor, s: Signals) -> torch.Tensor:
        x = modulate_features(content, s.mean_deep, s.std_deep)
        x = self.block_deep(x, s.scale_deep, s.shift_deep)
        x = modulate_features(x, s.mean_shallow, s.std_shallow)
        x = self.block_shallow(x, s.scale_shallow, s.shift_shallow)
        for i in range(0, len(self.up), 2):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.relu(self.up[i + 1](F.relu(self.up[i](x))))
        return self.out(x)


class MicroAST(nn.Module):
    """The four parts together: ``signals(style)`` once per style, then ``forward(content, signals)`` per image."""

    def __init__(self):
        super().__init__()
        self.content_encoder = MicroEncoder()
        self.style_encoder = MicroEncoder()
        self.modulator = Modulator()
        self.decoder = MicroDecoder()

    def signals(self, style: torch.Tensor) -> Signals:
        """The style image's (B, 3, H, W, RGB 0-1) modulation signals; any size of at least 8 px a side."""
        shallow, deep = self.style_encoder(style)
        mean_deep, std_deep = channel_moments(deep)
        mean_shallow, std_shallow = channel_moments(shallow)
        return Signals(mean_deep=mean_deep, std_deep=std_deep, mean_shallow=mean_shallow, std_shallow=std_shallow,
                       **self.modulator(shallow, deep))

    def forward(self, content: torch.Tensor, signals: Signals | torch.Tensor) -> torch.Tensor:
        """Content RGB 0-1 (sides a multiple of STRIDE) -> the stylized picture, same size, not clamped. ``signals``
        may be the style images themselves (one per content image; training calls the module, never its parts)."""
        if isinstance(signals, torch.Tensor):
            signals = self.signals(signals)
        _, deep = self.content_encoder(content)   # the decoder reads the deep level only
        return self.decoder(deep, signals)
