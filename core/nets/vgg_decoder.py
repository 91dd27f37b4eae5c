"""Decoders that invert one encoder tap to an RGB image: the mirror of VGG (Li et al. 2017, WCT section 3; Huang &
Belongie 2017, section 6.1): nearest-neighbour upsampling where the encoder pools, reflection padding, no norms.

One plan per encoder family, deepest first; a decoder for a level is the plan's tail from that level on. The
relu3_1..relu1_1 part keeps the Linear Style Transfer release's names (conv7..conv11), so its relu3_1 file loads
unchanged and a deeper decoder can start from it. The relu4_1 and relu5_1 parts mirror the family's encoder: ``vgg16``
(the ImageNet encoder in vgg16_encoder.py, the default): conv3_2, conv3_3, pool, conv4_1 are undone by d41_1 (512 ->
256, then upsample), d41_2, d41_3; conv4_2, conv4_3, pool, conv5_1 by d51_1..d51_3. ``vgg19n`` (the normalised VGG19 in
vgg_normalised.py, whose blocks have one 3x3 convolution more: pytorch-AdaIN's and LST's relu4_1 decoders): d41_4 and
d51_4 undo conv3_4 and conv4_4. Below relu4_1 the two families' decoders are the same network.
``width`` scales every hidden channel count (the fast path's slim student decoder); 1 is the paper's.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .prune import fit_slim_conv

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
FAMILIES = ("vgg16", "vgg19n")

# name, in, out, relu, upsample after
_PLAN = (
    ("d51_1", 512, 512, True, True),
    ("d51_2", 512, 512, True, False),
    ("d51_3", 512, 512, True, False),
    ("d41_1", 512, 256, True, True),
    ("d41_2", 256, 256, True, False),
    ("d41_3", 256, 256, True, False),
    ("conv7", 256, 128, True, True),
    ("conv8", 128, 128, True, False),
    ("conv9", 128, 64, True, True),
    ("conv10", 64, 64, True, False),
    ("conv11", 64, 3, False, False),
)
_EXTRA_VGG19N = {"d51_3": ("d51_4", 512, 512, True, False), "d41_3": ("d41_4", 256, 256, True, False)}
_PLANS = {"vgg16": _PLAN,
          "vgg19n": tuple(step for layer in _PLAN for step in (layer, _EXTRA_VGG19N.get(layer[0])) if step)}
# The first layer of each level's decoder.
_FIRST = {"relu5_1": "d51_1", "relu4_1": "d41_1", "relu3_1": "conv7", "relu2_1": "conv9", "relu1_1": "conv11"}


def plan(level: str, family: str = "vgg16") -> tuple[tuple[str, int, int, bool, bool], ...]:
    """The full-width decoder for ``level`` of ``family``'s encoder: (name, in, out, relu, upsample after) per 3x3
    convolution, each after a reflection pad of 1."""
    if level not in _FIRST:
        raise ValueError(f"decoder level must be one of {LEVELS}, got {level!r}")
    if family not in FAMILIES:
        raise ValueError(f"decoder family must be one of {FAMILIES}, got {family!r}")
    names = [name for name, *_ in _PLANS[family]]
    return _PLANS[family][names.index(_FIRST[level]):]


class VGGDecoder(nn.Module):
    """Features at ``level`` of the ``family``'s encoder -> RGB image (approximately [0, 1])."""

    def __init__(self, level: str = "relu3_1", width: float = 1.0, family: str = "vgg16"):
        super().__init__()
        if not 0 < width <= 1:
            raise ValueError(f"decoder width must be in (0, 1], got {width}")
        self.level, self.width, self.family = level, width, family
        scaled = []
        for i, (name, cin, cout, relu, up) in enumerate(plan(level, family)):
            # The input (the encoder's features) and the RGB output keep their sizes; hidden layers shrink.
            cin = cin if i == 0 else max(8, round(cin * width))
            cout = cout if name == "conv11" else max(8, round(cout * width))
            scaled.append((name, cin, cout, relu, up))
        self.plan = tuple(scaled)
        for name, cin, cout, _, _ in self.plan:
            self.add_module(name, nn.Conv2d(cin, cout, 3))

    def forward(self, feat: torch.Tensor, first: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``first``: a stand-in for the first convolution, padding included, that reads ``feat`` (the fast path's
        AdaIN folded into it: ops/adain_fold.py)."""
        x = feat
        for i, (name, _, _, relu, upsample) in enumerate(self.plan):
            x = first(x) if i == 0 and first is not None else getattr(self, name)(_pad(x))
            x = _after_conv(x, relu, upsample)
        return x

    @property
    def first_conv(self) -> nn.Conv2d:
        return getattr(self, self.plan[0][0])


def _pad(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x, (1, 1, 1, 1), mode="reflect")


def _after_conv(x: torch.Tensor, relu: bool, upsample: bool) -> torch.Tensor:
    if relu:
        x = F.relu(x)
    return F.interpolate(x, scale_factor=2, mode="nearest") if upsample else x


@torch.no_grad()
def start_from_wide(slim: VGGDecoder, wide: VGGDecoder, wide_in: torch.Tensor, slim_in: torch.Tensor) -> None:
    """Start a slim decoder from a full-width one of the same level (core/nets/prune.py): layer by layer, keep the
    wide decoder's most active channels and refit each slim convolution to its outputs, fed the slim decoder's own
    inputs (``slim_in`` may come from another encoder than ``wide_in``: the fast path's student)."""
    if [name for name, *_ in slim.plan] != [name for name, *_ in wide.plan]:
        raise ValueError(f"a {slim.level} {slim.family} decoder cannot start from a {wide.level} {wide.family} one")
    wide_x, slim_x = wide_in, slim_in
    for name, _, _, relu, upsample in slim.plan:
        _, wide_x, slim_x = fit_slim_conv(getattr(wide, name), getattr(slim, name), _pad(wide_x), _pad(slim_x))
        wide_x, slim_x = _after_conv(wide_x, relu, upsample), _after_conv(slim_x, relu, upsample)
