"""Channel pruning with layer-wise reconstruction (He, Zhang & Sun, "Channel Pruning for Accelerating Very Deep
Neural Networks", ICCV 2017, with an energy ranking in place of their LASSO selection): a slim network of the same
plan as a wide trained one (the fast path's student encoder from VGG16, its slim decoder from the full one) keeps,
at every hidden convolution, the output channels with the most activation energy on sample inputs, and each slim
convolution is refitted by ridge least squares so that, fed the slim network's own (already pruned) inputs, it
reproduces the wide layer's pre-activation outputs on the kept channels. A starting point for distillation, which
a random start needed thousands of CPU steps to reach.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RIDGE = 1e-3   # relative to the mean diagonal of the normal equations: keeps under-sampled deep layers stable
CHUNK = 8      # images per block of the normal equations (the unfolded inputs of a whole batch would not fit)


def _solve(blocks, ridge: float) -> torch.Tensor:
    """Ridge least squares over (inputs, targets) row blocks, accumulated as normal equations; the last row of the
    solution is the bias."""
    gram = rhs = None
    for x, y in blocks:
        a = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
        gram = a.T @ a if gram is None else gram + a.T @ a
        rhs = a.T @ y.double() if rhs is None else rhs + a.T @ y.double()
    gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
    return torch.linalg.solve(gram, rhs)


def _set(layer: nn.Conv2d, solution: torch.Tensor) -> None:
    layer.weight.copy_(solution[:-1].T.reshape(layer.weight.shape).to(layer.weight.dtype))
    layer.bias.copy_(solution[-1].to(layer.bias.dtype))


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def most_active(features: torch.Tensor, count: int) -> torch.Tensor:
    """Indices (ascending) of the ``count`` channels of pre-activation ``features`` with the most rectified energy."""
    if count >= features.shape[1]:
        return torch.arange(features.shape[1])
    return F.relu(features).pow(2).mean(dim=(0, 2, 3)).topk(count).indices.sort().values


@torch.no_grad()
def fit_slim_conv(wide: nn.Conv2d, slim: nn.Conv2d, wide_in: torch.Tensor, slim_in: torch.Tensor,
                  ridge: float = RIDGE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit ``slim`` to ``wide`` on these inputs (each as its convolution sees it; padding is the convolution's own).

    Keeps every output when the two have as many (an RGB output), else the ``slim.out_channels`` with the most
    rectified energy. Returns (kept output indices, wide output, slim output).
    """
    wide_out = wide(wide_in)
    keep = most_active(wide_out, slim.out_channels)

    # unfold pads with zeros only: a reflection-padded convolution's inputs are padded its own way first.
    own_padding = slim.padding_mode != "zeros"

    def blocks():
        for start in range(0, len(slim_in), CHUNK):
            x = slim_in[start:start + CHUNK]
            if own_padding:
                x = F.pad(x, slim._reversed_padding_repeated_twice, mode=slim.padding_mode)
            cols = F.unfold(x, slim.kernel_size, padding=0 if own_padding else slim.padding, stride=slim.stride)
            yield cols.transpose(1, 2).reshape(-1, cols.shape[1]), _pixels(wide_out[start:start + CHUNK, keep])

    _set(slim, _solve(blocks(), ridge))
    return keep, wide_out, slim(slim_in)


@torch.no_grad()
def fit_linear_map(source: torch.Tensor, target: torch.Tensor, layer: nn.Conv2d, ridge: float = RIDGE) -> None:
    """Set the 1x1 convolution ``layer`` to the ridge least-squares map from ``source`` to ``target`` features."""
    _set(layer, _solve([(_pixels(source), _pixels(target))], ridge))
