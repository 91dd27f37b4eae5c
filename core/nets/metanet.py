"""MetaNet: Shen, Yan & Zeng, "Neural Style Transfer via Meta Networks", CVPR 2018.
The meta network maps the style's VGG16 statistics (channel means and standard deviations at relu1_2, relu2_2,
relu3_3, relu4_3) through a hidden layer split into one group per layer, then a linear head per layer, to every
weight and bias of a small transform net (downsampling, residual blocks, upsampling). Deviations: hidden sizes
and the transform width scaled down for a CPU (paper: 1792 hidden units in 14 groups, width 32); the statistics
enter as log(1 + x), since VGG16's 0-255 features span four orders of magnitude across layers, standardised over
the training styles; the output is Johnson et al.'s scaled tanh.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
STYLE_FEATURE_DIM = 2 * (64 + 128 + 256 + 512)
STRIDE = 4
# Statistics that hardly vary over the training styles are not blown up past 10x: a new style far off in such a
# dimension would otherwise write extreme weights.
MIN_STAT_SCALE = 0.1


def style_statistics(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """VGG16 features of one style image -> the meta network's input vector (1, 1920)."""
    parts = []
    for name in STYLE_LAYERS:
        f = features[name].flatten(2).float()
        parts += [f.mean(-1), f.std(-1, unbiased=False)]
    return torch.log1p(torch.cat(parts, 1).clamp_min(0))


def transform_plan(width: int, residual_blocks: int) -> list[tuple[str, int, int, int, int]]:
    """(name, in, out, kernel, stride) of each convolution of the generated transform net. Only the last one
    has a bias: every other is followed by instance norm, which cancels a bias."""
    w = width
    plan = [("down0", 3, w, 9, 1), ("down1", w, 2 * w, 3, 2), ("down2", 2 * w, 4 * w, 3, 2)]
    for i in range(residual_blocks):
        plan += [(f"res{i}a", 4 * w, 4 * w, 3, 1), (f"res{i}b", 4 * w, 4 * w, 3, 1)]
    plan += [("up1", 4 * w, 2 * w, 3, 1), ("up2", 2 * w, w, 3, 1), ("out", w, 3, 9, 1)]
    return plan


def _conv(x, weight, bias, stride, norm=True, relu=True):
    """One generated convolution. ``weight`` (S, out, in, k, k) holds S styles' filters: with S == 1 every image
    uses the one network; with S == batch, image i uses network i (one grouped convolution for all of them)."""
    styles, k = weight.shape[0], weight.shape[-1]
    bias = bias.reshape(-1) if bias is not None and bias.numel() else None
    b, c, h, w = x.shape
    if styles == 1:
        x = F.conv2d(F.pad(x, [k // 2] * 4, mode="reflect"), weight[0], bias, stride)
    elif styles == b:
        x = F.conv2d(F.pad(x.reshape(1, b * c, h, w), [k // 2] * 4, mode="reflect"), weight.flatten(0, 1), bias,
                     stride, groups=b)
        x = x.reshape(b, -1, *x.shape[-2:])
    else:
        raise ValueError(f"{styles} generated networks for a batch of {b} images")
    if norm:
        x = F.instance_norm(x)
    return F.relu(x) if relu else x


def run_transform(x: torch.Tensor, params: dict[str, tuple[torch.Tensor, torch.Tensor]],
                  residual_blocks: int) -> torch.Tensor:
    """The transform net with generated parameters (instance norm without affine: every weight is generated)."""
    for name in ("down0", "down1", "down2"):
        w, b = params[name]
        x = _conv(x, w, b, 2 if name != "down0" else 1)
    for i in range(residual_blocks):
        y = _conv(x, *params[f"res{i}a"], 1)
        x = x + _conv(y, *params[f"res{i}b"], 1, relu=False)
    for name in ("up1", "up2"):
        x = _conv(F.interpolate(x, scale_factor=2, mode="nearest"), *params[name], 1)
    # Johnson et al.'s scaled tanh output (their 150 tanh + 127.5, in 0-1 units): a generated last layer with
    # large weights then saturates instead of sending the losses to thousands.
    return 0.5 + 0.588 * torch.tanh(_conv(x, *params["out"], 1, norm=False, relu=False))


class MetaNet(nn.Module):
    """style statistics (S, 1920) -> parameters of S transform nets; ``forward(content, stats)`` runs them (S is
    1, or the batch size: one style per image)."""

    def __init__(self, width: int = 8, residual_blocks: int = 5, hidden: int = 16):
        super().__init__()
        self.width, self.residual_blocks, self.hidden = width, residual_blocks, hidden
        self.plan = transform_plan(width, residual_blocks)
        # Standardisation of the statistics over the training styles (set by the recipe before training): what
        # all styles share would otherwise swamp what tells them apart, and the generated nets all come out alike.
        self.register_buffer("stat_mean", torch.zeros(STYLE_FEATURE_DIM))
        self.register_buffer("stat_scale", torch.ones(STYLE_FEATURE_DIM))
        self.trunk = nn.Linear(STYLE_FEATURE_DIM, hidden * len(self.plan))
        self.heads = nn.ModuleList()
        for name, cin, cout, k, _ in self.plan:
            head = nn.Linear(hidden, cout * cin * k * k + (cout if name == "out" else 0))
            # Start where a freshly initialised transform net starts: the head's bias is a Kaiming-uniform
            # draw of the layer's filters, and its weight is small, so styles first only nudge them.
            bound = 1.0 / math.sqrt(cin * k * k)
            with torch.no_grad():
                head.bias.uniform_(-bound, bound)
                head.weight.mul_(0.1 * bound)
            self.heads.append(head)

    @torch.no_grad()
    def standardise_over(self, stats: torch.Tensor) -> None:
        """Centre and scale the meta network's input by the training styles' statistics (S, 1920)."""
        self.stat_mean.copy_(stats.mean(0))
        self.stat_scale.copy_(stats.std(0).clamp_min(MIN_STAT_SCALE) if stats.shape[0] > 1
                              else torch.ones_like(self.stat_scale))

    def config(self) -> dict:
        return {"arch": "metanet", "width": self.width, "residual_blocks": self.residual_blocks, "hidden": self.hidden}

    def generate(self, stats: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Statistics of S styles (S, 1920) -> {layer: (weight (S, out, in, k, k), bias (S, out or 0))}."""
        styles = (stats.reshape(-1, STYLE_FEATURE_DIM) - self.stat_mean) / self.stat_scale
        groups = F.relu(self.trunk(styles)).reshape(styles.shape[0], len(self.plan), self.hidden)
        params = {}
        for i, ((name, cin, cout, k, _), head) in enumerate(zip(self.plan, self.heads)):
            flat = head(groups[:, i])
            params[name] = (flat[:, : cout * cin * k * k].reshape(-1, cout, cin, k, k), flat[:, cout * cin * k * k:])
        return params

    def forward(self, content: torch.Tensor, style) -> torch.Tensor:
        """``style``: statistics (1 or B, 1920) or parameters already generated by ``generate``."""
        params = style if isinstance(style, dict) else self.generate(style)
        return run_transform(content, params, self.residual_blocks)
