"""Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer", ECCV 2016: the transform net.
Deviations (as most re-implementations): instance norm (Ulyanov et al. 2016) instead of batch norm, nearest
upsample + conv instead of fractionally strided conv, and a linear output (clamped at inference) instead of
the scaled tanh; ``width`` scales every layer (paper: 32, giving 32-64-128 channels). ``upsample="transposed"``
restores the paper's fractionally strided convolutions, for networks imported from projects that trained with
them (core/foreign/rrmina.py); our own training uses the default.
"""
from __future__ import annotations

from torch import nn

from .blocks import ConvLayer, ResidualBlock, ShiftedResidualBlock, TransposedConvLayer, UpsampleConv

PAPER_WIDTH = 32
STRIDE = 4   # two stride-2 convolutions: inputs are padded to a multiple of this
UPSAMPLES = {"nearest": UpsampleConv, "transposed": TransposedConvLayer}


class TransformNet(nn.Module):
    """RGB [0, 1] (B, 3, H, W) -> stylized RGB, same size (H, W multiples of 4)."""

    def __init__(self, width: int = PAPER_WIDTH, residual_blocks: int = 5, upsample: str = "nearest"):
        super().__init__()
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLES)}, got {upsample!r}")
        self.width, self.residual_blocks, self.upsample = width, residual_blocks, upsample
        w, up = width, UPSAMPLES[upsample]
        # Before a transposed convolution a residual shift is not cancelled downstream (blocks.py): keep it.
        block = ShiftedResidualBlock if upsample == "transposed" else ResidualBlock
        self.body = nn.Sequential(
            ConvLayer(3, w, 9), ConvLayer(w, 2 * w, 3, 2), ConvLayer(2 * w, 4 * w, 3, 2),
            *[block(4 * w) for _ in range(residual_blocks)],
            up(4 * w, 2 * w), up(2 * w, w), ConvLayer(w, 3, 9, plain=True))

    def config(self) -> dict:
        config = {"arch": "johnson_transform", "width": self.width, "residual_blocks": self.residual_blocks}
        if self.upsample != "nearest":   # written only when not the default: older files' metadata stays as it was
            config["upsample"] = self.upsample
        return config

    def forward(self, content, style=None):
        return self.body(content)
