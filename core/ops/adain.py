"""Adaptive instance normalisation (Huang & Belongie 2017, eq. 8)."""
from __future__ import annotations

import torch

from .stats import mean_std


def adain(content: torch.Tensor, style_mean: torch.Tensor, style_std: torch.Tensor,
          mask: torch.Tensor | None = None, eps: float = 1e-5, unbiased: bool = False) -> torch.Tensor:
    """Normalise ``content`` per channel and give it ``style_mean``/``style_std`` (B|1, C, 1, 1).

    With ``mask`` the content statistics come from the masked region only, as in the paper's
    spatial control (section 7.3); the caller composites the regions.
    """
    c_mean, c_std = mean_std(content, eps, mask, unbiased)
    scale = style_std / c_std   # one affine map per channel: two passes over the features instead of four
    return torch.addcmul(style_mean - c_mean * scale, content, scale)
