"""ReCoNet (Gao, Gu, Chen, Zhou, Dou, "ReCoNet: Real-time Coherent Video Style Transfer Network", ACCV 2018):
the encoder-decoder, at the paper's width and at a real-time width for CPUs.

Paper width (table 1): conv 9x9 48, conv 3x3/2 96, conv 3x3/2 192, four residual blocks, two nearest
upsample + conv 3x3 (96, 48), conv 9x9 to RGB, instance norm and ReLU, tanh output; the encoder's output (after
the residual blocks) is the feature map the feature-level temporal loss reads. Deviation: the scaled tanh
0.5 + 0.588 tanh (Johnson et al.'s 150 tanh + 127.5, in 0..1 units) where the paper leaves the scale open.

The real-time width (the project's design) keeps the same shape of computation but spends almost nothing at
full resolution: the first convolution already strides (3 -> 16 at 1/2), the residual blocks at 1/4 are
depthwise-separable (a 3x3 depthwise and a 1x1 pointwise convolution each, MobileNet's factorisation), the
decoder's upsampling convolutions are depthwise-separable too, and the full-resolution layer is one 3x3
convolution to RGB. At 640x360 that is about 0.6 GMAC per frame against the paper width's 19 GMAC.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ConvLayer, ResidualBlock, UpsampleConv

STRIDE = 4          # both widths downsample twice: inputs are padded to a multiple of 4
WIDTHS = ("paper", "realtime")


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 + 0.588 * torch.tanh(x)


class SeparableConv(nn.Module):
    """3x3 depthwise + 1x1 pointwise convolution, then instance norm and ReLU unless ``plain``. The depthwise
    convolution zero-pads (a separate reflection pad cost 15% of the frame time at 640x360)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, plain: bool = False, relu: bool = True):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=plain)
        self.norm = None if plain else nn.InstanceNorm2d(cout, affine=True)
        self.relu = relu and not plain

    def forward(self, x):
        x = self.pointwise(self.depthwise(x))
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x, inplace=True) if self.relu else x


class SeparableResidual(nn.Module):
    """The residual block with depthwise-separable convolutions; the last norm is scale-only (see blocks.py)."""

    def __init__(self, channels: int):
        super().__init__()
        self.first = SeparableConv(channels, channels)
        self.second = SeparableConv(channels, channels, relu=False)
        self.second.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        return x + self.scale * self.second(self.first(x))


class SeparableUpsample(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = SeparableConv(cin, cout)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class SubpixelHead(nn.Module):
    """The last layer of the real-time width: a 3x3 convolution at half resolution to 3x4 channels, rearranged
    into full-resolution RGB (Shi et al. 2016's sub-pixel convolution), so no full-resolution feature map is
    ever made. Initialised as nearest upsampling (Aitken et al. 2017, ICNR) to start free of checkerboards."""

    def __init__(self, cin: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, 3 * 4, 3, padding=1, padding_mode="reflect")
        with torch.no_grad():
            self.conv.weight.copy_(self.conv.weight[::4].repeat_interleave(4, dim=0))
            self.conv.bias.copy_(self.conv.bias[::4].repeat_interleave(4))
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class ReCoNet(nn.Module):
    """RGB [0, 1] (B, 3, H, W), H and W multiples of 4 -> stylized RGB; ``features=True`` also returns the
    encoder output that the feature-level temporal loss compares between frames."""

    def __init__(self, width: str = "paper", channels: int | None = None, residual_blocks: int = 4):
        super().__init__()
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {WIDTHS}, got {width!r}")
        self.width, self.residual_blocks = width, residual_blocks
        if width == "paper":
            c = channels or 48
            self.encoder = nn.Sequential(ConvLayer(3, c, 9), ConvLayer(c, 2 * c, 3, 2), ConvLayer(2 * c, 4 * c, 3, 2),
                                         *[ResidualBlock(4 * c) for _ in range(residual_blocks)])
            self.decoder = nn.Sequential(UpsampleConv(4 * c, 2 * c), UpsampleConv(2 * c, c), ConvLayer(c, 3, 9, plain=True))
        else:
            c = channels or 48
            half = max(c // 3, 8)
            self.encoder = nn.Sequential(ConvLayer(3, half, 3, 2), ConvLayer(half, c, 3, 2),
                                         *[SeparableResidual(c) for _ in range(residual_blocks)])
            self.decoder = nn.Sequential(SeparableUpsample(c, half), SubpixelHead(half))
        self.channels = c

    def config(self) -> dict:
        return {"arch": "reconet", "width": self.width, "channels": self.channels,
                "residual_blocks": self.residual_blocks}

    def forward(self, content: torch.Tensor, features: bool = False):
        f = self.encoder(content)
        y = scaled_tanh(self.decoder(f))
        return (y, f) if features else y
