"""Whitening and colouring transform (Li et al. 2017, section 3.1), numerically robust.

The covariance eigendecomposition runs in float64. Directions whose eigenvalue falls below ``floor`` times the
largest are dropped, as the authors' code drops eigenvalues under 1e-5 (an absolute threshold there, relative here:
the VGG16 levels work on a 0-255 scale), so flat regions and rank-deficient features never produce inf/NaN and
whitening never lifts a near-silent direction to unit variance. ``damping`` adds that share of the mean eigenvalue
to the content covariance before whitening, as the authors' code adds the identity (scale-free here), so the
photo's weak directions are whitened less than its strong ones: deep levels keep the layout instead of confetti.
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


def sym_power(cov: torch.Tensor, power: float, floor: float, damping: float = 0.0) -> torch.Tensor:
    """cov^power over the directions whose eigenvalue is at least ``floor`` times the largest (others: zero), after
    adding ``damping`` times the mean eigenvalue to every eigenvalue."""
    vals, vecs = torch.linalg.eigh(cov)
    top = vals.max().clamp_min(1e-12)
    kept = vals >= top * floor
    vals = vals.clamp_min(top * floor) + damping * vals.clamp_min(0).mean()
    return (vecs * torch.where(kept, vals.pow(power), torch.zeros_like(vals))) @ vecs.T


def colouring_stats(style_feat: torch.Tensor, floor: float = 1e-5) -> ColouringStats:
    """Style side of WCT, computed once per style (the reusable style code)."""
    fs, mean = _centred(style_feat)
    cov = _covariance(fs)
    return ColouringStats(mean=mean, cov_sqrt=sym_power(cov, 0.5, floor), cov=cov)


def whiten_colour(content_feat: torch.Tensor, style: ColouringStats, floor: float = 1e-5,
                  damping: float = 0.0) -> torch.Tensor:
    """Whiten (B=1, C, H, W) content features and colour them with the style's covariance."""
    _, c, h, w = content_feat.shape
    fc, _ = _centred(content_feat)
    whitening = sym_power(_covariance(fc), -0.5, floor, damping)
    # The style side may arrive in another dtype (a code moved with its method): compute in float64.
    out = style.cov_sqrt.double() @ (whitening @ fc) + style.mean.double()
    return out.reshape(1, c, h, w).to(content_feat.dtype)
