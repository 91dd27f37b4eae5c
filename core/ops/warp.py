"""Backward warping by optical flow and the reliability masks of Ruder, Dosovitskiy & Brox,
"Artistic style transfer for videos", GCPR 2016 (section 4.1: forward-backward consistency and
motion boundaries). Flow is (B, 2, H, W) in pixels, channel 0 = x (u), channel 1 = y (v).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _sampling_grid(flow: torch.Tensor) -> torch.Tensor:
    """Normalised grid_sample coordinates of x + flow(x) (align_corners=True: -1/+1 are pixel centres)."""
    b, _, h, w = flow.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    return torch.stack((gx, gy), dim=-1)


def backward_warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample ``image`` at x + flow(x): with the flow from frame t to frame t-1 this brings frame t-1 to t."""
    grid = _sampling_grid(flow.to(image.dtype))
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


def inside_frame(flow: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) bool: x + flow(x) lands inside the other frame."""
    _, _, h, w = flow.shape
    grid = _sampling_grid(flow)
    return ((grid.abs() <= 1.0).all(dim=-1)).unsqueeze(1)


def _squared_gradient(flow: torch.Tensor) -> torch.Tensor:
    """|grad u|^2 + |grad v|^2 with central differences (one-sided at the borders)."""
    gy, gx = torch.gradient(flow, dim=(2, 3))
    return (gx ** 2 + gy ** 2).sum(dim=1, keepdim=True)


def reliable_flow_mask(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s mask for frame t: 1 where ``backward`` (t -> t-1) can be trusted, else 0.

    A pixel is dropped when the round trip disagrees (|w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5,
    with w~(x) = forward(x + w^(x))), on a motion boundary (|grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002)
    or when it moves out of the frame. Returns (B, 1, H, W) in the flow's dtype.
    """
    fwd_at = backward_warp(forward, backward)
    mag_b = (backward ** 2).sum(1, keepdim=True)
    mag_f = (fwd_at ** 2).sum(1, keepdim=True)
    inconsistent = ((backward + fwd_at) ** 2).sum(1, keepdim=True) > 0.01 * (mag_b + mag_f) + 0.5
    boundary = _squared_gradient(backward) > 0.01 * mag_b + 0.002
    return (~(inconsistent | boundary) & inside_frame(backward)).to(backward.dtype)
