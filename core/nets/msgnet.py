"""MSG-Net: Zhang & Dana, "Multi-style Generative Network for Real-time Transfer", ECCV Workshops 2018.
Siamese style encoder sharing the transform net's encoder, CoMatch layers at two scales, upsampled convolutions.
Deviations: basic residual blocks and strided convolutions instead of bottleneck blocks (cheaper on a CPU);
``width`` scales every layer; the learned styles' Gram matrices are kept in the file at several brush sizes.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops.stats import gram_per_element
from .blocks import ConvLayer, ResidualBlock, UpsampleConv

STRIDE = 4


gram = gram_per_element   # (B, C, C), normalised by C*H*W as in the paper's style loss


class CoMatch(nn.Module):
    """The CoMatch layer (paper eq. 6): y = reshape((W G)^T x), matching the target's second-order statistics
    with a learned C x C weight W; G is the style's Gram matrix at this layer."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, channels, channels).uniform_(0.0, 0.02))

    def forward(self, x: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = torch.matmul(self.weight, target_gram)                # (Bg, C, C)
        y = torch.matmul(p.transpose(1, 2).expand(b, c, c), x.reshape(b, c, h * w))
        return y.reshape(b, c, h, w)


class MSGNet(nn.Module):
    """content (B, 3, H, W) + style Grams -> stylized RGB. ``style_grams(style)`` is the siamese branch."""

    def __init__(self, width: int = 32, residual_blocks: int = 5):
        super().__init__()
        self.width, self.residual_blocks = width, residual_blocks
        w = width
        self.stem = ConvLayer(3, w, 7)
        self.down1 = ConvLayer(w, 2 * w, 3, 2)
        self.down2 = ConvLayer(2 * w, 4 * w, 3, 2)
        self.match1, self.match2 = CoMatch(2 * w), CoMatch(4 * w)
        self.body = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(residual_blocks)],
                                  UpsampleConv(4 * w, 2 * w), UpsampleConv(2 * w, w), ConvLayer(w, 3, 7, plain=True))

    def config(self) -> dict:
        return {"arch": "msgnet", "width": self.width, "residual_blocks": self.residual_blocks}

    def style_grams(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The siamese branch: the style through the shared encoder, Gram matrices at both CoMatch scales."""
        f1 = self.down1(self.stem(style))
        f2 = self.down2(f1)
        return gram(f1), gram(f2)

    def forward(self, content: torch.Tensor, style) -> torch.Tensor:
        """``style``: a style image batch (Grams taken by the siamese branch) or a (gram1, gram2) pair."""
        g1, g2 = self.style_grams(style) if isinstance(style, torch.Tensor) else style
        x = self.match1(self.down1(self.stem(content)), g1)
        x = self.match2(self.down2(x), g2)
        return self.body(x)
