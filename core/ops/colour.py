"""Colour control. Preservation by luminance-only transfer (Gatys et al. 2016, "Preserving colour in neural
artistic style transfer", section 2): keep the output's luminance, take chrominance from the content. The palette
option goes the other way: the result takes the style image's colour mean and covariance.
"""
from __future__ import annotations

import torch

from .wct import ColouringStats, colouring_stats, sym_power, whiten_colour

# ITU-R BT.601 YIQ, the space the paper uses.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                            [0.595716, -0.274453, -0.321263],
                            [0.211456, -0.522591, 0.311135]])


def rgb_to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(rgb), rgb)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(yiq), yiq)


def preserve_colour(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance of ``stylized`` with the I/Q chrominance of ``content`` (same size), clamped to [0, 1].

    The stylized luminance is first matched to the content luminance's mean and std (the paper's
    luminance histogram matching, first two moments), so the image keeps its overall brightness.
    """
    s, c = rgb_to_yiq(stylized), rgb_to_yiq(content)
    y_s, y_c = s[:, :1], c[:, :1]
    y = (y_s - y_s.mean()) / (y_s.std() + 1e-6) * y_c.std() + y_c.mean()
    return yiq_to_rgb(torch.cat([y, c[:, 1:]], dim=1)).clamp(0, 1)


def palette_stats(images: list[torch.Tensor], weights: tuple[float, ...]) -> ColouringStats:
    """The colour mean and covariance of style images (B=1 each), blended as one mixture of their pixels: the palette
    a result is moved toward by ``match_palette``."""
    mean = torch.zeros(3, 1, dtype=torch.float64, device=images[0].device)
    second = torch.zeros(3, 3, dtype=torch.float64, device=images[0].device)
    for image, w in zip(images, weights):
        s = colouring_stats(image[:1])
        mean += w * s.mean
        second += w * (s.cov + s.mean @ s.mean.T)
    cov = second - mean @ mean.T
    return ColouringStats(mean=mean, cov_sqrt=sym_power(cov, 0.5, 1e-5), cov=cov)


def match_palette(image: torch.Tensor, palette: ColouringStats, amount: float) -> torch.Tensor:
    """Move (B, 3, H, W) ``image``'s colours ``amount`` of the way to ``palette``: the linear colour transfer that gives
    each image the palette's colour mean and covariance (Hertzmann et al. 2001, "Image Analogies", section 3.4; Gatys
    et al. 2017, "Controlling Perceptual Factors", section 5, in the other direction), clamped to [0, 1]."""
    matched = torch.cat([whiten_colour(x, palette) for x in image.split(1)])
    return torch.lerp(image, matched, amount).clamp(0, 1)
