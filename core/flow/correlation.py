"""FlowNetC's correlation layer (Dosovitskiy et al., "FlowNet", ICCV 2015, section 3, eq. 1).

For every output position x (input positions 0, s1, 2 s1, ...) and every displacement d on the grid
{-D, -D + s2, ..., D}^2 (D = max_displacement, s2 = stride2), the output channel of d holds
    c(x, d) = sum over the k x k window o (taps ``dilation`` apart) of <a(x + o), b(x + o + d)>  / (C k^2),
i.e. the paper's patch comparison normalised by the number of elements, as the authors' Caffe layer does.
Values outside either map are zeros. Channel order: dy major, dx minor (dy = -D first).

This module holds the plain PyTorch reference, the definition the fused C++/CUDA kernels (csrc/) are checked against.
``correlation`` and ``Correlation`` run the fused kernel (built on first use by kernels.py; C++ for CPU float32/float64,
CUDA where a GPU and a toolkit exist) through an autograd Function, and the reference for anything else.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .kernels import correlation_backend, kernel_for  # noqa: F401  (correlation_backend: re-exported)


def displacements(max_displacement: int, stride2: int) -> list[int]:
    """The displacement offsets along one axis, -D..D in steps of stride2 (D rounded down to the grid)."""
    steps = max_displacement // stride2
    return [i * stride2 for i in range(-steps, steps + 1)]


def output_size(height: int, width: int, stride1: int) -> tuple[int, int]:
    return (height + stride1 - 1) // stride1, (width + stride1 - 1) // stride1


def check_arguments(a: torch.Tensor, b: torch.Tensor, max_displacement: int, stride2: int, kernel_size: int,
                    stride1: int, dilation: int) -> None:
    if a.dim() != 4 or a.shape != b.shape:
        raise ValueError(f"correlation needs two (B, C, H, W) maps of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"correlation kernel_size must be odd and positive, got {kernel_size}")
    if max_displacement < 0 or stride2 < 1 or stride1 < 1 or dilation < 1:
        raise ValueError("correlation needs max_displacement >= 0 and strides and dilation >= 1, got "
                         f"{max_displacement}, {stride2}, {stride1}, {dilation}")


def correlation_reference(a: torch.Tensor, b: torch.Tensor, max_displacement: int = 20, stride2: int = 2,
                          kernel_size: int = 1, stride1: int = 1, dilation: int = 1) -> torch.Tensor:
    """(B, C, H, W) x2 -> (B, n^2, ceil(H / s1), ceil(W / s1)), n = 2 (D // s2) + 1. Differentiable, memory
    O(B C H W) per displacement (it loops over displacements: the definition, not the fast path)."""
    check_arguments(a, b, max_displacement, stride2, kernel_size, stride1, dilation)
    _, c, h, w = a.shape
    offsets = displacements(max_displacement, stride2)
    reach = offsets[-1]
    padded = F.pad(b, (reach, reach, reach, reach))
    radius = (kernel_size // 2) * dilation
    ones = a.new_ones(1, 1, kernel_size, kernel_size)
    planes = []
    for dy in offsets:
        for dx in offsets:
            shifted = padded[:, :, reach + dy: reach + dy + h, reach + dx: reach + dx + w]
            product = (a * shifted).sum(1, keepdim=True)
            if kernel_size > 1:   # window sum with zero padding, taps ``dilation`` apart
                product = F.conv2d(product, ones, padding=radius, dilation=dilation)
            planes.append(product[:, :, ::stride1, ::stride1])
    return torch.cat(planes, 1) / (c * kernel_size * kernel_size)


class Correlation(nn.Module):
    """The correlation layer as a module; ``forward(a, b)`` has no weights. Uses the fused kernel when it is built."""

    def __init__(self, max_displacement: int = 20, stride2: int = 2, kernel_size: int = 1, stride1: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.max_displacement, self.stride2 = max_displacement, stride2
        self.kernel_size, self.stride1, self.dilation = kernel_size, stride1, dilation

    @property
    def out_channels(self) -> int:
        return len(displacements(self.max_displacement, self.stride2)) ** 2

    def extra_repr(self) -> str:
        return (f"max_displacement={self.max_displacement}, stride2={self.stride2}, kernel_size={self.kernel_size}, "
                f"stride1={self.stride1}, dilation={self.dilation}")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return correlation(a, b, self.max_displacement, self.stride2, self.kernel_size, self.stride1, self.dilation)


class _FusedCorrelation(torch.autograd.Function):
    """The compiled kernel under autograd: forward saves the two maps, backward returns both maps' gradients."""

    @staticmethod
    def forward(ctx, a, b, max_displacement, stride2, kernel_size, stride1, dilation, kernel):
        ctx.save_for_backward(a, b)
        ctx.params, ctx.kernel = (max_displacement, stride2, kernel_size, stride1, dilation), kernel
        return kernel.forward(a, b, *ctx.params)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[:2]
        grad_a, grad_b = ctx.kernel.backward(grad_out, a, b, *ctx.params, need_a, need_b)
        return grad_a, grad_b, None, None, None, None, None, None


def correlation(a: torch.Tensor, b: torch.Tensor, max_displacement: int = 20, stride2: int = 2, kernel_size: int = 1,
                stride1: int = 1, dilation: int = 1) -> torch.Tensor:
    """The layer's function form: the fused kernel where one serves these maps, else ``correlation_reference``
    (same signature and result)."""
    check_arguments(a, b, max_displacement, stride2, kernel_size, stride1, dilation)
    kernel = kernel_for(a, b)
    if kernel is None:
        return correlation_reference(a, b, max_displacement, stride2, kernel_size, stride1, dilation)
    return _FusedCorrelation.apply(a, b, max_displacement, stride2, kernel_size, stride1, dilation, kernel)
