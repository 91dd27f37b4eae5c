"""Colour preservation by luminance-only transfer (Gatys et al. 2016, "Preserving colour in neural
artistic style transfer", section 2): keep the output's luminance, take chrominance from the content."""
from __future__ import annotations

import torch

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
