"""The "normalised" VGG19 encoder (AdaIN/WCT/LST): relu3_1 for the light levels, relu4_1 and relu5_1 for the deep ones.

Layer names follow the Linear Style Transfer release (conv1..conv6 to relu3_1 in its encoder3, conv7..conv10 to
relu4_1 in encoder4, conv11..conv14 to relu5_1 in encoder5) so its files load unchanged; the decoders that invert its
taps (and the VGG16 encoder's) are in vgg_decoder.py. Only the layers up to ``depth`` are built, so a deeper file
(pytorch-AdaIN's vgg_normalised, converted by core/foreign/adain_release.py) also serves a shallower encoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}
# Downsampling factor of each tap, so callers can pad inputs to a multiple of it.
STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "relu5_1": 16}
# The 3x3 convolutions from one tap to the next, (name, in, out); a 2x2 max-pool comes before the tap's own
# (last) convolution, except at relu1_1. conv1, the 1x1 colour conversion, comes before all of them.
BLOCKS = {
    "relu1_1": (("conv2", 3, 64),),
    "relu2_1": (("conv3", 64, 64), ("conv4", 64, 128)),
    "relu3_1": (("conv5", 128, 128), ("conv6", 128, 256)),
    "relu4_1": (("conv7", 256, 256), ("conv8", 256, 256), ("conv9", 256, 256), ("conv10", 256, 512)),
    "relu5_1": (("conv11", 512, 512), ("conv12", 512, 512), ("conv13", 512, 512), ("conv14", 512, 512)),
}


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k)


class NormalisedVGGEncoder(nn.Module):
    """RGB in [0, 1] -> features at relu1_1 .. ``depth`` (reflection padding, as trained)."""

    def __init__(self, depth: str = "relu3_1"):
        super().__init__()
        if depth not in LEVELS:
            raise ValueError(f"encoder depth must be one of {LEVELS}, got {depth!r}")
        self.depth = depth
        self.conv1 = _conv(3, 3, 1)  # colour conversion: folds the Caffe BGR/mean convention in
        for level in LEVELS[:LEVELS.index(depth) + 1]:
            for name, cin, cout in BLOCKS[level]:
                self.add_module(name, _conv(cin, cout))

    @staticmethod
    def _block(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return F.relu(conv(F.pad(x, (1, 1, 1, 1), mode="reflect")))

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Return ``{tap: feature}`` for the requested taps (default: the deepest one only)."""
        taps = taps or (self.depth,)
        deepest = max(LEVELS.index(t) for t in taps)
        if deepest > LEVELS.index(self.depth):
            raise ValueError(f"taps {taps} are not in this encoder (built to {self.depth})")
        out = {}
        x = self.conv1(x)
        for level in LEVELS[:deepest + 1]:
            block = BLOCKS[level]
            for i, (name, _, _) in enumerate(block):
                if i == len(block) - 1 and level != "relu1_1":
                    x = F.max_pool2d(x, 2)
                x = self._block(getattr(self, name), x)
            out[level] = x
        return {t: out[t] for t in taps}
