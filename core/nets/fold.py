"""Folding instance norms into the convolutions before them, with statistics frozen for a stream.

Instance norm computes each channel's mean and variance on every frame: two reductions and a normalising pass
over every feature map, about a quarter of the real-time ReCoNet's frame time on a CPU. Within one shot of a
video those statistics barely move (bench/video_methods.py measured: smoothing them over frames changed the
warping error by 1%), so a stream can measure them once, on its first frame, and fold them into the
convolution that feeds each norm: ``IN(W*x) = gamma * (W*x - mean) / std + beta`` is the convolution with
weight ``W * gamma / std`` and bias ``beta - gamma * mean / std``. The folded network is the trained one on the
calibration frame (tested) and a plain convolution stack on the next frames; the stream recalibrates after a
scene cut or a size change (the method drops the folded copy with the stream's history) and when the frame's
colour statistics drift (``FoldedStream.drifted``).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import BrushstreamError


def _parents(net: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    return {id(child): (parent, name) for parent in net.modules() for name, child in parent.named_children()}


@torch.no_grad()
def fold_instance_norms(net: nn.Module, calibration: torch.Tensor) -> nn.Module:
    """A copy of ``net`` whose instance norms use ``calibration``'s statistics, folded into their convolutions.

    Every ``nn.InstanceNorm2d`` must read the output of an ``nn.Conv2d`` directly (true of every transform
    network here); anything else raises, since its statistics could not be folded exactly.
    """
    net = copy.deepcopy(net).eval()
    last_conv: dict[str, object] = {}
    pairs: list[tuple[nn.Conv2d, nn.InstanceNorm2d, torch.Tensor, torch.Tensor]] = []

    def after_conv(conv, _inputs, output):
        last_conv["conv"], last_conv["output"] = conv, output

    def before_norm(norm, inputs):
        x = inputs[0]
        if last_conv.get("output") is not x:
            raise BrushstreamError(f"cannot fold {type(norm).__name__}: its input is not a convolution's output")
        dims = (0, 2, 3)   # one statistic per channel, shared by the batch (a stream is one frame at a time)
        pairs.append((last_conv["conv"], norm, x.mean(dims), x.var(dims, unbiased=False)))

    hooks = [m.register_forward_hook(after_conv) for m in net.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_pre_hook(before_norm) for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    try:
        net(calibration)
    finally:
        for h in hooks:
            h.remove()
    if len({id(norm) for _, norm, _, _ in pairs}) != len(pairs):
        raise BrushstreamError("cannot fold an instance norm that runs more than once per forward pass")

    parents = _parents(net)
    for conv, norm, mean, var in pairs:
        gain = torch.rsqrt(var + norm.eps)
        shift = -mean * gain
        if norm.affine:
            gain, shift = gain * norm.weight, shift * norm.weight + norm.bias
        bias = shift if conv.bias is None else conv.bias * gain + shift
        conv.weight.mul_(gain.view(-1, *([1] * (conv.weight.dim() - 1))).to(conv.weight))
        conv.bias = nn.Parameter(bias.to(conv.weight))
        parent, name = parents[id(norm)]
        setattr(parent, name, nn.Identity())
    return net


# A stream recalibrates when a channel's mean or standard deviation over the frame has moved this far (0..1
# units) from the calibration frame's: lighting changes and fades that the scene-cut detector lets through.
# On ../shared/data/video the largest drift within a shot is 0.10 (bikes_street, a pan into shade), where the
# frozen statistics' output differs from per-frame statistics' by 0.068 mean absolute; elsewhere below 0.05.
DRIFT_TOLERANCE = 0.08


def frame_statistics(x: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation of a (B, C, H, W) frame batch, as one vector."""
    x = x.detach().float()
    return torch.cat((x.mean((0, 2, 3)), x.std((0, 2, 3))))


class FoldedStream:
    """One stream's folded network and the statistics of the frame it was calibrated on."""

    def __init__(self, net: nn.Module, calibration: torch.Tensor, tolerance: float = DRIFT_TOLERANCE):
        self.net = fold_instance_norms(net, calibration)
        self.statistics, self.tolerance = frame_statistics(calibration), tolerance

    def drifted(self, x: torch.Tensor) -> bool:
        return float((frame_statistics(x) - self.statistics).abs().max()) > self.tolerance
