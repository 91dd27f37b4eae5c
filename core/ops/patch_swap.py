"""Style swap (Chen & Schmidt 2016, section 3): replace every content patch by its best-matching style patch.

Matching is a convolution with the normalised style patches as filters (eq. 2), the swap a transposed
convolution with one-hot maps of the argmax, which sums overlapping patches, divided by the overlap
count. Both passes walk over bands of style rows, so memory is bounded by the band size however large
the style image is: only the style feature map itself is kept, never all of its patches at once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _bands(style: torch.Tensor, k: int, chunk: int):
    """Yield (first patch index, patches (n, C, k, k)) over bands of whole rows of patch origins."""
    c, h, w = style.shape[1:]
    cols = w - k + 1
    rows_per_band = max(1, chunk // cols)
    for y0 in range(0, h - k + 1, rows_per_band):
        y1 = min(h - k + 1, y0 + rows_per_band)
        band = style[:, :, y0:y1 + k - 1]
        patches = F.unfold(band, k)[0].T.reshape(-1, c, k, k)   # row-major over origins, like the index
        yield y0 * cols, patches


def style_swap(content: torch.Tensor, style: torch.Tensor, patch_size: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Swap each patch of (1, C, H, W) ``content`` for the most correlated patch of (1, C, Hs, Ws) ``style``.

    The content patch norm is constant per location, so normalising only the style patches gives the
    paper's argmax. ``chunk`` is roughly how many style patches are matched at once.
    """
    if content.shape[0] != 1 or style.shape[0] != 1:
        raise ValueError("style_swap works on one image at a time")
    k = patch_size
    if min(style.shape[-2:]) < k or min(content.shape[-2:]) < k:
        raise ValueError(f"feature maps must be at least {k}x{k} for {k}x{k} patches")
    best_val = best_idx = None
    for start, patches in _bands(style, k, chunk):
        norms = patches.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
        val, idx = F.conv2d(content, patches / norms).max(dim=1)     # (1, H-k+1, W-k+1)
        idx = idx + start
        if best_val is None:
            best_val, best_idx = val, idx
        else:
            better = val > best_val
            best_val, best_idx = torch.where(better, val, best_val), torch.where(better, idx, best_idx)
    out = torch.zeros_like(content)
    for start, patches in _bands(style, k, chunk):
        local = best_idx - start
        hit = (local >= 0) & (local < patches.shape[0])
        if not hit.any():
            continue
        onehot = torch.zeros(1, patches.shape[0], *best_idx.shape[-2:], dtype=content.dtype, device=content.device)
        onehot.scatter_(1, local.clamp(0, patches.shape[0] - 1).unsqueeze(1), hit.unsqueeze(1).to(content.dtype))
        out += F.conv_transpose2d(onehot, patches)
    overlap = F.conv_transpose2d(torch.ones(1, 1, *best_idx.shape[-2:], dtype=content.dtype, device=content.device),
                                 torch.ones(1, 1, k, k, dtype=content.dtype, device=content.device))
    return out / overlap
