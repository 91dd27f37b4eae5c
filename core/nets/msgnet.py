"""MSG-Net: Zhang & Dana, "Multi-style Generative Network for Real-time Transfer", ECCV Workshops 2018.
Siamese style encoder sharing the transform net's encoder, CoMatch layers at two scales, upsampled convolutions.
Deviations: basic residual blocks and strided convolutions instead of bottleneck blocks (cheaper on a CPU);
``width`` scales every layer; CoMatch mixes with the style's channel covariance at unit mean variance and starts
from W = I (the paper: raw Gram, W ~ U(0, 0.02); both kept as options, see CoMatch); the learned styles'
statistics are kept in the file at several brush sizes.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops.stats import gram_per_element
from .blocks import ConvLayer, ResidualBlock, UpsampleConv

STRIDE = 4


gram = gram_per_element   # (B, C, C), normalised by C*H*W as in the paper's style loss


def covariance(feat: torch.Tensor) -> torch.Tensor:
    """The covariance of the channels, scaled to a mean variance of 1: CoMatch's output then keeps the scale of
    its input, so the style's mixing of channels reaches the trunk instead of vanishing beside it."""
    b, c, h, w = feat.shape
    x = feat.reshape(b, c, h * w)
    x = x - x.mean(2, keepdim=True)
    cov = torch.matmul(x, x.transpose(1, 2))
    return cov / (cov.diagonal(dim1=1, dim2=2).mean(1)[:, None, None] + 1e-8)


STATISTICS = {"gram": gram, "covariance": covariance}


class CoMatch(nn.Module):
    """The CoMatch layer (paper eq. 6): y = reshape((W G)^T x), matching the target's second-order statistics
    with a learned C x C weight W; G is the style's Gram matrix at this layer.

    ``init="paper"`` draws W from U(0, 0.02) as the reference code does; ``"identity"`` starts from I plus
    small noise, so that at initialisation y = G^T x mixes the content's channels the way the style's do.
    """

    def __init__(self, channels: int, init: str = "identity"):
        super().__init__()
        if init == "paper":
            weight = torch.empty(1, channels, channels).uniform_(0.0, 0.02)
        else:
            weight = torch.eye(channels)[None] + 0.01 * torch.randn(1, channels, channels)
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = torch.matmul(self.weight, target_gram)                # (Bg, C, C)
        y = torch.matmul(p.transpose(1, 2).expand(b, c, c), x.reshape(b, c, h * w))
        return y.reshape(b, c, h, w)


class MSGNet(nn.Module):
    """content (B, 3, H, W) + style statistics -> stylized RGB. ``style_statistics(style)`` is the siamese branch."""

    def __init__(self, width: int = 32, residual_blocks: int = 5, statistic: str = "covariance",
                 init: str = "identity"):
        super().__init__()
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {sorted(STATISTICS)}, got {statistic!r}")
        self.width, self.residual_blocks, self.statistic, self.init = width, residual_blocks, statistic, init
        w = width
        self.stem = ConvLayer(3, w, 7)
        self.down1 = ConvLayer(w, 2 * w, 3, 2)
        self.down2 = ConvLayer(2 * w, 4 * w, 3, 2)
        self.match1, self.match2 = CoMatch(2 * w, init), CoMatch(4 * w, init)
        self.body = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(residual_blocks)],
                                  UpsampleConv(4 * w, 2 * w), UpsampleConv(2 * w, w), ConvLayer(w, 3, 7, plain=True))

    def config(self) -> dict:
        return {"arch": "msgnet", "width": self.width, "residual_blocks": self.residual_blocks,
                "statistic": self.statistic, "init": self.init}

    def style_statistics(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The siamese branch: the style through the shared encoder, its statistic at both CoMatch scales."""
        f1 = self.down1(self.stem(style))
        f2 = self.down2(f1)
        stat = STATISTICS[self.statistic]
        return stat(f1), stat(f2)

    def forward(self, content: torch.Tensor, style) -> torch.Tensor:
        """``style``: a style image batch (statistics taken by the siamese branch), a list of style images (one per
        content image; sizes may differ), or a (statistic1, statistic2) pair."""
        if isinstance(style, torch.Tensor):
            style = self.style_statistics(style)
        elif isinstance(style, list):
            stats = [self.style_statistics(s) for s in style]
            style = tuple(torch.cat([s[level] for s in stats]) for level in (0, 1))
        g1, g2 = style
        x = self.match1(self.down1(self.stem(content)), g1)
        x = self.match2(self.down2(x), g2)
        return self.body(x)
