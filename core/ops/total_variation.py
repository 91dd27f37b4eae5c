"""Total variation, the smoothness prior both the optimisation and the trained networks use.

Gatys' pixel optimisation takes the anisotropic L1 form (Mahendran & Vedaldi 2015), which keeps edges; Johnson et
al.'s training takes the squared form (sec. 3.3), which is smooth to optimise through a network.
"""
from __future__ import annotations

import torch


def total_variation(x: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Mean |difference| (or squared difference) of vertically and horizontally neighbouring pixels, summed."""
    dy, dx = x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
    if squared:
        return dy.pow(2).mean() + dx.pow(2).mean()
    return dy.abs().mean() + dx.abs().mean()
