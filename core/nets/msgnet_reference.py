"""MSG-Net as its authors built it: Zhang & Dana, "Multi-style Generative Network for Real-time Transfer",
ECCV Workshops 2018 (arXiv:1703.06953). Rebuilt here so the authors' released network (PyTorch-Multi-Style-Transfer,
``21styles.model``, MIT licence; core/foreign/msgnet_reference.py converts it) runs in Brushstream. Brushstream's
own MSG-Net (core/nets/msgnet.py) departs from this layout on purpose; this module does not.

The architecture: a 7x7 stem, then two pre-activation bottleneck blocks of stride 2 (He et al. 2016, instance
norm without affine parameters) make the encoder; the siamese style branch is that same encoder, and the style's
Gram matrix there (F F^T / (C H W)) drives one Inspiration (CoMatch) layer, y = reshape((W G)^T x); then
``blocks`` bottleneck blocks, two up-bottlenecks (nearest 2x upsample, then convolution, on both the shortcut
and the main path), instance norm, ReLU and a final 7x7 convolution. Widths: 64 (stem), 128 (first block) and
4*ngf from the second block on, 128 and 64 in the decoder, as in the release (ngf 128, 6 blocks).

Conventions: this network takes RGB in [0, 1] and returns RGB in about [0, 1] (clamped by the method). The
released network takes BGR 0-255 (its loader reads RGB 0-255 and swaps the channels, for the content and the
style alike) and returns BGR 0-255; the converter folds that into the first convolution (channels swapped, times
255: instance norm follows it, but the fold is exact anyway) and the last (swapped, divided by 255), so the
weights here differ from the file's by those factors only. Padding is by reflection throughout; sizes must be
multiples of 4 (the method pads).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.stats import gram_per_element
from .msgnet import CoMatch

STRIDE = 4
EXPANSION = 4          # a bottleneck's output has 4x its inner width
STEM = 64              # the release's fixed widths: stem, first block's inner width, the up-blocks' inner widths
FIRST_INNER = 32
UP_INNER = (32, 16)


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class _Conv(nn.Module):
    """Reflection pad (kernel // 2), then a biased convolution; ``upsample`` first resizes 2x (nearest)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False):
        super().__init__()
        self.upsample, self.pad = upsample, kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.conv(x)


class Bottleneck(nn.Module):
    """Pre-activation bottleneck: (norm, ReLU, 1x1) -> (norm, ReLU, 3x3 at ``stride``) -> (norm, ReLU, 1x1 to
    4*inner), added to the input, or to a strided 1x1 projection of it when the shape changes. ``up``: the 3x3
    and the shortcut each upsample 2x (nearest) first: the paper's up-sample residual block."""

    def __init__(self, cin: int, inner: int, stride: int = 1, up: bool = False):
        super().__init__()
        cout = inner * EXPANSION
        self.shortcut = None
        if up:
            self.shortcut = _Conv(cin, cout, 1, upsample=True)
        elif stride != 1 or cin != cout:
            self.shortcut = _Conv(cin, cout, 1, stride)
        self.norm1, self.reduce = _norm(cin), _Conv(cin, inner, 1)
        self.norm2, self.conv = _norm(inner), _Conv(inner, inner, 3, 1 if up else stride, upsample=up)
        self.norm3, self.expand = _norm(inner), _Conv(inner, cout, 1)

    def forward(self, x):
        y = self.reduce(F.relu(self.norm1(x)))
        y = self.conv(F.relu(self.norm2(y)))
        y = self.expand(F.relu(self.norm3(y)))
        return (x if self.shortcut is None else self.shortcut(x)) + y


class MSGNetReference(nn.Module):
    """content RGB [0, 1] (B, 3, H, W) + a style (image batch, or the (Gram,) that ``style_statistics`` returns)
    -> stylized RGB, same size."""

    def __init__(self, ngf: int = 128, blocks: int = 6):
        super().__init__()
        self.ngf, self.blocks = int(ngf), int(blocks)
        wide = self.ngf * EXPANSION
        self.stem = _Conv(3, STEM, 7)
        self.stem_norm = _norm(STEM)
        self.down1 = Bottleneck(STEM, FIRST_INNER, stride=2)
        self.down2 = Bottleneck(FIRST_INNER * EXPANSION, self.ngf, stride=2)
        self.inspiration = CoMatch(wide, init="paper")
        self.body = nn.Sequential(*[Bottleneck(wide, self.ngf) for _ in range(self.blocks)])
        self.up1 = Bottleneck(wide, UP_INNER[0], up=True)
        self.up2 = Bottleneck(UP_INNER[0] * EXPANSION, UP_INNER[1], up=True)
        self.head_norm = _norm(UP_INNER[1] * EXPANSION)
        self.head = _Conv(UP_INNER[1] * EXPANSION, 3, 7)

    def config(self) -> dict:
        return {"arch": "msgnet_reference", "ngf": self.ngf, "blocks": self.blocks}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The shared encoder: content and style alike (the siamese branch)."""
        x = F.relu(self.stem_norm(self.stem(x)))
        return self.down2(self.down1(x))

    def style_statistics(self, style: torch.Tensor) -> tuple[torch.Tensor]:
        """The style's Gram matrix at the Inspiration layer, (B, 4ngf, 4ngf), as a one-element tuple (the
        method blends statistics level by level, as for Brushstream's MSG-Net)."""
        return (gram_per_element(self.encode(style)),)

    def forward(self, content: torch.Tensor, style) -> torch.Tensor:
        """``style``: a style image batch, a list of style images (one per content image), or ``(gram,)``."""
        if isinstance(style, torch.Tensor):
            style = self.style_statistics(style)
        elif isinstance(style, list):
            style = (torch.cat([self.style_statistics(s)[0] for s in style]),)
        (g,) = style
        x = self.inspiration(self.encode(content), g)
        x = self.up2(self.up1(self.body(x)))
        return self.head(F.relu(self.head_norm(x)))
