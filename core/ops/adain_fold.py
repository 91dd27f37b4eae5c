"""AdaIN through a linear embedding, folded into the convolution after it: an exact rewrite of the fast path for speed.

A student encoder's features reach the teacher's space through a 1x1 embedding ``g = u (W f + b)``; AdaIN (with
strength) then maps each channel affinely, ``t = d * g + e``, and the decoder's first 3x3 convolution reads ``t``
after reflection padding. All three are affine per pixel, and a per-pixel affine map commutes with reflection
padding, so the chain is one 3x3 convolution over the student's own few channels with per-image weights. The
statistics of ``g`` come from the student's: ``mean(g) = u (W mean(f) + b)``, ``var(g)_c = u^2 w_c^T cov(f) w_c``.
This skips the embedding and the wide feature map, and the first convolution reads C' instead of C channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def embedded_stats(native: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, unit: float,
                   eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (B, C) of ``unit * (weight @ native + bias)`` over space, from the (B, C', H, W)
    native features' mean and covariance, as ``ops.stats.mean_std`` would give on the embedded map."""
    b, c, h, w = native.shape
    flat = native.reshape(b, c, h * w)
    mean = flat.mean(dim=2)
    centred = flat - mean.unsqueeze(2)
    cov = centred @ centred.transpose(1, 2) / (h * w)
    var = torch.einsum("ci,bij,cj->bc", weight, cov, weight) * unit ** 2
    return unit * (mean @ weight.T + bias), (var.clamp_min(0) + eps).sqrt()


def folded_first_conv(native: torch.Tensor, embed: torch.nn.Conv2d, unit: float, conv: torch.nn.Conv2d,
                      style_mean: torch.Tensor, style_std: torch.Tensor, strength: float = 1.0,
                      eps: float = 1e-5) -> torch.Tensor:
    """``conv(reflect_pad(blend(adain(unit * embed(native), style), strength)))`` without the embedded map.

    ``style_mean``/``style_std``: (B|1, C, 1, 1) as ``ops.adain.adain`` takes them; ``strength`` as AdaIN eq. 14.
    """
    # The statistics and weights are a few small matrices: keep them in fp32 under autocast (var is a difference of
    # nearly equal sums).
    with torch.autocast(native.device.type, enabled=False):
        f = native.float()
        w_embed = embed.weight[:, :, 0, 0].float()   # (C, C')
        c_mean, c_std = embedded_stats(f, w_embed, embed.bias.float(), unit, eps)
        s_mean, s_std = style_mean.flatten(1).float(), style_std.flatten(1).float()
        scale = s_std / c_std                                     # AdaIN's per-channel gain
        gain = strength * scale + (1.0 - strength)                # t = gain * g + shift
        shift = strength * (s_mean - scale * c_mean)
        through = gain.unsqueeze(2) * (unit * w_embed)            # (B, C, C'): t = through @ f + offset
        offset = gain * (unit * embed.bias.float()) + shift       # (B, C)
        kernel = conv.weight.float()
        weight = torch.einsum("ocxy,bcj->bojxy", kernel, through)
        bias = conv.bias.float() + torch.einsum("ocxy,bc->bo", kernel, offset)
    batch, out_ch = weight.shape[:2]
    padded = F.pad(native, (1, 1, 1, 1), mode="reflect")
    weight, bias = weight.to(native.dtype), bias.to(native.dtype)
    if batch == 1:
        return F.conv2d(padded, weight[0], bias[0])
    # One group per image: each has its own folded weights.
    grouped = F.conv2d(padded.reshape(1, -1, *padded.shape[-2:]), weight.flatten(0, 1), bias.flatten(), groups=batch)
    return grouped.reshape(batch, out_ch, *grouped.shape[-2:])
