"""Building blocks of the feed-forward transform networks (Johnson, MSG-Net, MetaNet, later ReCoNet).

Reflection padding everywhere (no dark borders) and upsampling by nearest-neighbour resize then
convolution instead of transposed convolution (Odena et al. 2016: no checkerboard artefacts).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvLayer(nn.Sequential):
    """Reflection pad + convolution (+ instance norm + ReLU unless ``plain``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, plain: bool = False):
        # A bias before instance norm is cancelled by it: leaving it out saves parameters whose gradient is only
        # rounding noise (which Adam would turn into full-size steps, and which breaks DDP/serial equality).
        layers = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride, bias=plain)]
        if not plain:
            layers += [nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class UpsampleConv(nn.Module):
    """2x nearest-neighbour upsampling, then ConvLayer: the transposed convolution without its checkerboard."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__()
        self.conv = ConvLayer(cin, cout, kernel)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and an identity shortcut (Johnson et al. 2016, supp. fig. 1,
    with the padding kept so the size stays the same, as Gross & Wilber's re-implementation does).

    The last norm has a learned scale but no shift: a per-channel shift added to the trunk reaches the next
    instance norm unchanged (convolution and reflection padding keep constants constant) and is cancelled there.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvLayer(channels, channels, 3),
                                  nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
                                  nn.InstanceNorm2d(channels, affine=False))
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        return x + self.scale * self.body(x)


class TransposedConvLayer(nn.Sequential):
    """2x upsampling by a transposed 3x3 convolution (stride 2, padding 1, output padding 1: exactly twice the size),
    then instance norm and ReLU: the paper's fractionally strided convolution, kept for networks trained with it
    (rrmina/fast-neural-style-pytorch, imported by core/foreign/rrmina.py). No bias: the norm cancels it."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__(nn.ConvTranspose2d(cin, cout, kernel, 2, kernel // 2, output_padding=1, bias=False),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class ShiftedResidualBlock(ResidualBlock):
    """ResidualBlock whose last norm keeps its shift too. Needed where a transposed convolution follows the trunk:
    it turns a per-channel constant into a stride-periodic pattern (output pixels gather different numbers of kernel
    taps), which the next instance norm does not remove, so the shift is no longer cancelled."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        return super().forward(x) + self.shift
