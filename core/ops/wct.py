"""Whitening and colouring transform (Li et al. 2017, section 3.1), numerically robust.

The covariance eigendecomposition runs in float64 with an eigenvalue floor relative to the largest
eigenvalue, so flat regions and rank-deficient style features never produce inf/NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ColouringStats:
    """Everything WCT needs from a style feature map: its mean and covariance square root."""
    mean: torch.Tensor          # (C, 1)
    cov_sqrt: torch.Tensor      # (C, C) = E D^{1/2} E^T
    cov: torch.Tensor           # (C, C), kept for tests and for blending


def _centred(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    c = feat.shape[1]
    f = feat[0].reshape(c, -1).double()
    mean = f.mean(dim=1, keepdim=True)
    return f - mean, mean


def _covariance(fc: torch.Tensor) -> torch.Tensor:
    return fc @ fc.T / max(fc.shape[1] - 1, 1)


def sym_power(cov: torch.Tensor, power: float, floor: float) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(vals.max().clamp_min(1e-12) * floor)
    return (vecs * vals.pow(power)) @ vecs.T


def colouring_stats(style_feat: torch.Tensor, floor: float = 1e-5) -> ColouringStats:
    """Style side of WCT, computed once per style (the reusable style code)."""
    fs, mean = _centred(style_feat)
    cov = _covariance(fs)
    return ColouringStats(mean=mean, cov_sqrt=sym_power(cov, 0.5, floor), cov=cov)


def whiten_colour(content_feat: torch.Tensor, style: ColouringStats, floor: float = 1e-5) -> torch.Tensor:
    """Whiten (B=1, C, H, W) content features and colour them with the style's covariance."""
    _, c, h, w = content_feat.shape
    fc, _ = _centred(content_feat)
    whitening = sym_power(_covariance(fc), -0.5, floor)
    # The style side may arrive in another dtype (a code moved with its method): compute in float64.
    out = style.cov_sqrt.double() @ (whitening @ fc) + style.mean.double()
    return out.reshape(1, c, h, w).to(content_feat.dtype)
