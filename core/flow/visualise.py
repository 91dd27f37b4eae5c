"""Optical flow as a picture: the Middlebury colour wheel (Baker et al., "A Database and Evaluation Methodology for
Optical Flow", IJCV 2011): hue is the direction, saturation the magnitude relative to the largest in the picture.

The wheel has 55 hues built from six ramps (red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13,
magenta-red 6), the same ramp lengths as the benchmark's own code, so our pictures read like everyone else's.
"""
from __future__ import annotations

import math

import torch

RAMPS = (15, 6, 4, 11, 13, 6)
UNKNOWN = 1e9   # Middlebury marks unknown flow with values above this


def colour_wheel() -> torch.Tensor:
    """(55, 3) float in [0, 1]: the wheel's colours, counter-clockwise from red."""
    primaries = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=torch.float32)
    rows = []
    for i, n in enumerate(RAMPS):
        start, end = primaries[i], primaries[(i + 1) % len(RAMPS)]
        t = torch.arange(n, dtype=torch.float32).unsqueeze(1) / n
        rows.append(start + (end - start) * t)
    return torch.cat(rows)


def flow_to_rgb(flow: torch.Tensor, max_magnitude: float | None = None) -> torch.Tensor:
    """(B, 2, H, W) flow in pixels -> (B, 3, H, W) colours in [0, 1]; unknown or non-finite flow is black.

    ``max_magnitude`` fixes the saturation scale (compare several pictures); by default each picture uses its own
    largest known magnitude.
    """
    if flow.dim() == 3:
        return flow_to_rgb(flow.unsqueeze(0), max_magnitude)[0]
    flow = flow.detach().float().cpu()
    u, v = flow[:, 0], flow[:, 1]
    known = torch.isfinite(u) & torch.isfinite(v) & (u.abs() < UNKNOWN) & (v.abs() < UNKNOWN)
    u, v = torch.where(known, u, 0.0), torch.where(known, v, 0.0)
    radius = torch.sqrt(u * u + v * v)
    if max_magnitude is None:
        scale = radius.flatten(1).amax(1).clamp_min(1e-6).view(-1, 1, 1)
    else:
        scale = torch.full((flow.shape[0], 1, 1), max(float(max_magnitude), 1e-6))
    radius = radius / scale
    wheel = colour_wheel()
    n = wheel.shape[0]
    # The benchmark's angle convention: flow pointing right is red, up yellow-green, left cyan, down violet.
    position = (torch.atan2(-v, -u) / math.pi + 1) / 2 * (n - 1)
    k0 = position.floor().long().clamp(0, n - 1)
    k1 = (k0 + 1) % n
    frac = (position - k0.float()).unsqueeze(-1)
    colour = (1 - frac) * wheel[k0] + frac * wheel[k1]            # (B, H, W, 3)
    r = radius.unsqueeze(-1)
    inside = r <= 1
    colour = torch.where(inside, 1 - r * (1 - colour), colour * 0.75)   # beyond the scale: darker, as Middlebury does
    colour = colour * known.unsqueeze(-1)
    return colour.permute(0, 3, 1, 2).clamp(0, 1).contiguous()
