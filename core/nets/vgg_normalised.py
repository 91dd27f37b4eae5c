"""The "normalised" VGG19 encoder cut at relu3_1 (AdaIN/WCT/LST at the light levels).

Layer names follow the Linear Style Transfer release (conv1..conv11) so its files load unchanged; the decoders
that invert its taps (and the VGG16 encoder's deeper ones) are in vgg_decoder.py.
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

