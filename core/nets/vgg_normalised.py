"""The "normalised" VGG19 encoder cut at relu3_1 (AdaIN/WCT/LST) and the decoders that invert its taps.

Layer names follow the Linear Style Transfer release (conv1..conv11) so its files load unchanged;
the relu2_1 and relu1_1 decoders trained here reuse the tail of the same plan (conv9..conv11 and
conv11), which is the mirror structure of Li et al. 2017 (WCT) section 3.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = ("relu1_1", "relu2_1", "relu3_1")
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256}
# Downsampling factor of each tap, so callers can pad inputs to a multiple of it.
STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4}


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k)


class NormalisedVGGEncoder(nn.Module):
    """RGB in [0, 1] -> features at relu1_1, relu2_1 and relu3_1 (reflection padding, as trained)."""

    def __init__(self, depth: str = "relu3_1"):
        super().__init__()
        if depth not in LEVELS:
            raise ValueError(f"encoder depth must be one of {LEVELS}, got {depth!r}")
        self.depth = depth
        self.conv1 = _conv(3, 3, 1)  # colour conversion: folds the Caffe BGR/mean convention in
        self.conv2 = _conv(3, 64)
        if depth != "relu1_1":
            self.conv3 = _conv(64, 64)
            self.conv4 = _conv(64, 128)
        if depth == "relu3_1":
            self.conv5 = _conv(128, 128)
            self.conv6 = _conv(128, 256)

    @staticmethod
    def _block(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return F.relu(conv(F.pad(x, (1, 1, 1, 1), mode="reflect")))

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Return ``{tap: feature}`` for the requested taps (default: the deepest one only)."""
        taps = taps or (self.depth,)
        deepest = max(LEVELS.index(t) for t in taps)
        out = {}
        x = self._block(self.conv2, self.conv1(x))
        out["relu1_1"] = x
        if deepest >= 1:
            x = self._block(self.conv3, x)
            x = F.max_pool2d(x, 2)
            x = self._block(self.conv4, x)
            out["relu2_1"] = x
        if deepest >= 2:
            x = self._block(self.conv5, x)
            x = F.max_pool2d(x, 2)
            x = self._block(self.conv6, x)
            out["relu3_1"] = x
        return {t: out[t] for t in taps}


# The full relu3_1 decoder plan; shallower decoders are its tail.
_DECODER_PLAN = (
    ("conv7", 256, 128, True, True),   # name, in, out, relu, upsample after
    ("conv8", 128, 128, True, False),
    ("conv9", 128, 64, True, True),
    ("conv10", 64, 64, True, False),
    ("conv11", 64, 3, False, False),
)
_DECODER_START = {"relu3_1": 0, "relu2_1": 2, "relu1_1": 4}


class VGGDecoder(nn.Module):
    """Features at ``level`` -> RGB image (approximately [0, 1]); nearest upsampling, reflection padding."""

    def __init__(self, level: str = "relu3_1"):
        super().__init__()
        if level not in _DECODER_START:
            raise ValueError(f"decoder level must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.plan = _DECODER_PLAN[_DECODER_START[level]:]
        for name, cin, cout, _, _ in self.plan:
            self.add_module(name, _conv(cin, cout))

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = feat
        for name, _, _, relu, upsample in self.plan:
            x = getattr(self, name)(F.pad(x, (1, 1, 1, 1), mode="reflect"))
            if relu:
                x = F.relu(x)
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x
