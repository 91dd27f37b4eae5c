"""Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer", ECCV 2016: the transform net.
Deviations (as most re-implementations): instance norm (Ulyanov et al. 2016) instead of batch norm, nearest
upsample + conv instead of fractionally strided conv, and a linear output (clamped at inference) instead of
the scaled tanh; ``width`` scales every layer (paper: 32, giving 32-64-128 channels).
"""
from __future__ import annotations

from torch import nn

from .blocks import ConvLayer, ResidualBlock, UpsampleConv

PAPER_WIDTH = 32
STRIDE = 4   # two stride-2 convolutions: inputs are padded to a multiple of this


class TransformNet(nn.Module):
    """RGB [0, 1] (B, 3, H, W) -> stylized RGB, same size (H, W multiples of 4)."""

    def __init__(self, width: int = PAPER_WIDTH, residual_blocks: int = 5):
        super().__init__()
        self.width, self.residual_blocks = width, residual_blocks
        w = width
        self.body = nn.Sequential(
            ConvLayer(3, w, 9), ConvLayer(w, 2 * w, 3, 2), ConvLayer(2 * w, 4 * w, 3, 2),
            *[ResidualBlock(4 * w) for _ in range(residual_blocks)],
            UpsampleConv(4 * w, 2 * w), UpsampleConv(2 * w, w), ConvLayer(w, 3, 9, plain=True))

    def config(self) -> dict:
        return {"arch": "johnson_transform", "width": self.width, "residual_blocks": self.residual_blocks}

    def forward(self, content, style=None):
        return self.body(content)
