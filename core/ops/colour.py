"""Colour control. Preservation by luminance-only transfer (Gatys et al. 2016, "Preserving colour in neural
artistic style transfer", section 2): keep the output's luminance, take chrominance from the content. The palette
option goes the other way: the result keeps its luminance and takes the style images' chrominance statistics.
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
    """The chrominance (YIQ's I and Q) mean and covariance of style images (B=1 each), blended as one mixture of their
    pixels: the palette a result is moved toward by ``match_palette``."""
    mean = torch.zeros(2, 1, dtype=torch.float64, device=images[0].device)
    second = torch.zeros(2, 2, dtype=torch.float64, device=images[0].device)
    for image, w in zip(images, weights):
        s = colouring_stats(rgb_to_yiq(image[:1])[:, 1:])
        mean += w * s.mean
        second += w * (s.cov + s.mean @ s.mean.T)
    cov = second - mean @ mean.T
    return ColouringStats(mean=mean, cov_sqrt=sym_power(cov, 0.5, 1e-5), cov=cov)


def match_palette(image: torch.Tensor, palette: ColouringStats, amount: float) -> torch.Tensor:
    """Move (B, 3, H, W) ``image``'s chrominance ``amount`` of the way to ``palette``'s mean and covariance (linear
    colour transfer, Hertzmann et al. 2001, "Image Analogies", section 3.4, on the I and Q channels), keeping its
    luminance: the converse of ``preserve_colour``. Luminance carries the structure the network drew (matching it too
    cost more content than it gained style: README, issue 9). Clamped to [0, 1]."""
    yiq = rgb_to_yiq(image)
    chroma = torch.cat([whiten_colour(x, palette) for x in yiq[:, 1:].split(1)])
    matched = yiq_to_rgb(torch.cat([yiq[:, :1], chroma], dim=1))
    return torch.lerp(image, matched, amount).clamp(0, 1)
