"""Sizes: pad to a network's stride and crop back, resize to a requested side length."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (B, C, H, W) on the bottom/right to a multiple; returns the original (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if h > ph and w > pw else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]


def pad_with_context(x: torch.Tensor, multiple: int, context: int = 0) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad ``context`` px of the picture's own surroundings on every side, then the bottom/right to a
    multiple. A network's zero-padded borders then fall outside what is kept (crop_box), instead of showing as
    bands along the edges. Returns the padded tensor and the (top, left, height, width) box of the picture."""
    h, w = x.shape[-2:]
    c = max(0, min(context, h - 1, w - 1))
    if c:
        x = F.pad(x, (c, c, c, c), mode="reflect")
    x, _ = pad_to_multiple(x, multiple)
    return x, (c, c, h, w)


def crop_box(x: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    top, left, h, w = box
    return x[..., top:top + h, left:left + w]


def long_side_size(h: int, w: int, long_side: int | None) -> tuple[int, int]:
    """(H, W) with the longer side scaled to ``long_side`` (None: unchanged); the one place this rounding lives."""
    if not long_side:
        return h, w
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_long_side(x: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize so the longer side is ``long_side`` px, keeping the aspect ratio (antialiased)."""
    h, w = x.shape[-2:]
    size = long_side_size(h, w, long_side)
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=long_side < max(h, w)).clamp(0, 1)


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
