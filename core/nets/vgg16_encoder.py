"""The VGG16 ImageNet backbone as an arbitrary-style encoder: RGB 0..1 in, ReLU features up to relu5_1 out.

The Caffe input convention (BGR, 0-255, minus the ImageNet mean) is a fixed first 1x1 convolution, so AdaIN, WCT and
LST at relu4_1/relu5_1 take the same RGB 0..1 images as every other method; it is exact, because the per-channel
affine map runs before the first 3x3 convolution's zero padding. Layers keep torchvision's ``features.N`` keys, so
the manifest's ``vgg16_imagenet_caffe`` file loads unchanged (only the layers up to ``depth`` are built).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .vgg16 import _CAFFE_MEAN_BGR, _CFG, TAP_INDEX

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}
STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "relu5_1": 16}
# Mean activation of each tap on photos (training crops): the unit of features that run to hundreds, for modules that
# must work on unit-scale numbers (the distilled student's embeddings, LST's covariance branches).
MEAN_ACTIVATION = {"relu1_1": 21.5, "relu2_1": 178.0, "relu3_1": 247.0, "relu4_1": 150.0}


def caffe_input_conv() -> tuple[torch.Tensor, torch.Tensor]:
    """Weight (3, 3, 1, 1) and bias (3,) of the 1x1 convolution RGB 0..1 -> BGR 0..255 minus the mean."""
    weight = torch.zeros(3, 3, 1, 1)
    for out_channel, in_channel in enumerate((2, 1, 0)):   # B <- R's slot reversed
        weight[out_channel, in_channel] = 255.0
    return weight, -torch.tensor(_CAFFE_MEAN_BGR)


class VGG16Encoder(nn.Module):
    """RGB [0, 1] -> ``{tap: features}`` for taps among relu1_1..relu5_1 (default: the deepest built)."""

    def __init__(self, depth: str = "relu4_1"):
        super().__init__()
        if depth not in LEVELS:
            raise ValueError(f"encoder depth must be one of {LEVELS}, got {depth!r}")
        self.depth = depth
        weight, bias = caffe_input_conv()
        # Constants of the weights' convention, not learned and not in the file.
        self.register_buffer("input_weight", weight, persistent=False)
        self.register_buffer("input_bias", bias, persistent=False)
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if len(layers) > TAP_INDEX[depth]:
                break
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*layers[: TAP_INDEX[depth] + 1])

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        taps = taps or (self.depth,)
        unknown = [t for t in taps if t not in LEVELS or TAP_INDEX[t] >= len(self.features)]
        if unknown:
            raise ValueError(f"taps {unknown} are not in this encoder (built to {self.depth})")
        wanted = {TAP_INDEX[t]: t for t in taps}
        last = max(wanted)
        x = F.conv2d(x, self.input_weight.to(x.dtype), self.input_bias.to(x.dtype))
        out = {}
        for i, layer in enumerate(self.features[: last + 1]):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out
