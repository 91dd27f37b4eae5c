"""Feature statistics shared by methods, losses and metrics."""
from __future__ import annotations

import torch


def mean_std(feat: torch.Tensor, eps: float = 1e-5, mask: torch.Tensor | None = None,
             unbiased: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over space of (B, C, H, W) features, shaped (B, C, 1, 1).

    With ``mask`` (B, 1, H, W) in [0, 1] the statistics are weighted by it (AdaIN spatial control).
    ``unbiased``: divide the variance by N - 1 (MicroAST's weights were trained so).
    """
    if mask is None:   # one pass over the features for both
        var, mean = torch.var_mean(feat, dim=(2, 3), keepdim=True, unbiased=unbiased)
    else:
        w = mask / mask.sum(dim=(2, 3), keepdim=True).clamp_min(1e-8)
        mean = (feat * w).sum(dim=(2, 3), keepdim=True)
        var = ((feat - mean) ** 2 * w).sum(dim=(2, 3), keepdim=True)
    return mean, (var + eps).sqrt()


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (H W), (B, C, C): size-independent so images of any size compare."""
    b, c, h, w = feat.shape
    f = feat.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def gram_per_element(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / (C H W), the normalisation of Johnson et al. eq. 3 and MSG-Net's CoMatch."""
    return gram(feat) / feat.shape[1]
