"""ComfyUI's tensor layouts <-> core's, in one place: IMAGE is (B, H, W, C) float 0..1 on the CPU, MASK (B, H, W);
core works on (B, 3, H, W). Nothing outside nodes/ sees ComfyUI's layout."""
from __future__ import annotations

import torch

from ..core.errors import BrushstreamError


def to_core(image: torch.Tensor) -> torch.Tensor:
    """IMAGE (B, H, W, C) -> (B, 3, H, W); alpha is dropped and a one-channel image is spread to RGB."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4:
        raise BrushstreamError(f"expected an IMAGE batch (B, H, W, C), got {getattr(image, 'shape', type(image))}")
    channels = image.shape[-1]
    if channels == 1:
        image = image.expand(*image.shape[:3], 3)
    elif channels not in (3, 4):
        raise BrushstreamError(f"expected an IMAGE with 1, 3 or 4 channels, got {channels}")
    return image[..., :3].permute(0, 3, 1, 2).contiguous().float()


def to_comfy(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> IMAGE (B, H, W, 3), float32 on the CPU."""
    return image.detach().permute(0, 2, 3, 1).contiguous().float().cpu()


def mask_to_core(mask: torch.Tensor) -> torch.Tensor:
    """MASK (B, H, W) or (H, W) -> (B, 1, H, W)."""
    if mask.dim() == 2:
        mask = mask.unsqueeze(0)
    if mask.dim() != 3:
        raise BrushstreamError(f"expected a MASK (B, H, W), got shape {tuple(mask.shape)}")
    return mask.unsqueeze(1).float()
