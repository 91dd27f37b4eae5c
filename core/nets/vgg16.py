"""VGG16 convolution base (Simonyan & Zisserman 2015) with named ReLU taps, in the Caffe input convention.

Indices match torchvision's ``vgg16().features`` so the ImageNet file loads with its keys unchanged.
Used as the loss network (Gatys, feed-forward training) and by the quality metrics.
"""
from __future__ import annotations

import torch
from torch import nn

# (out channels per conv) per block; "M" is a 2x2 max-pool.
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def _tap_names() -> dict[int, str]:
    """Index of each ReLU in the Sequential -> 'reluB_L'."""
    names, block, layer, index = {}, 1, 0, 0
    for v in _CFG:
        if v == "M":
            block, layer = block + 1, 0
            index += 1
        else:
            layer += 1
            names[index + 1] = f"relu{block}_{layer}"
            index += 2
    return names


TAPS = _tap_names()  # {1: 'relu1_1', 3: 'relu1_2', ..., 29: 'relu5_3'}
TAP_INDEX = {name: i for i, name in TAPS.items()}


class VGG16Features(nn.Module):
    """RGB in [0, 1] -> dict of ReLU features, computing only as deep as the deepest tap asked for."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean_bgr", torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, rgb01: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> BGR [0, 255] minus the ImageNet mean (the weights' Caffe convention)."""
        return rgb01.flip(1) * 255.0 - self.mean_bgr

    def forward(self, rgb01: torch.Tensor, taps: tuple[str, ...]) -> dict[str, torch.Tensor]:
        unknown = [t for t in taps if t not in TAP_INDEX]
        if unknown:
            raise ValueError(f"unknown VGG16 taps {unknown}; known: {sorted(TAP_INDEX)}")
        last = max(TAP_INDEX[t] for t in taps)
        wanted = {TAP_INDEX[t]: t for t in taps}
        out = {}
        x = self.preprocess(rgb01)
        for i, layer in enumerate(self.features[: last + 1]):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out
