"""A slim VGG16-shaped encoder distilled from the ImageNet VGG16 (Collaborative Distillation, Wang et al., CVPR 2020):
every convolution has ``width`` times the teacher's channels, and a 1x1 linear embedding per tap maps the student's
features into the teacher's space, so the teacher's AdaIN statistics and decoders apply to them unchanged.
Deviation: the embedding is kept at inference (the paper trains a student decoder on the student's own features);
here the relu4_1 embedding feeds the teacher's decoder, or a slim decoder trained on the embedded features.
"""
from __future__ import annotations

import torch
from torch import nn

from .vgg16 import _CFG, TAP_INDEX
from .vgg16_encoder import CHANNELS, MEAN_ACTIVATION

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


class StudentEncoder(nn.Module):
    """RGB [0, 1] -> {tap: teacher-space features} for taps relu1_1..relu4_1 (``embedded=False``: the student's own)."""

    def __init__(self, width: float = 0.25):
        super().__init__()
        if not 0 < width <= 1:
            raise ValueError(f"student width must be in (0, 1], got {width}")
        self.width = width
        layers: list[nn.Module] = []
        cin, own = 3, {}
        for v in _CFG:
            if len(layers) > TAP_INDEX["relu4_1"]:
                break
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = max(8, round(v * width))
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
                cin = cout
                own[len(layers) - 1] = cout
        self.features = nn.Sequential(*layers[: TAP_INDEX["relu4_1"] + 1])
        self.embed = nn.ModuleDict({t: nn.Conv2d(own[TAP_INDEX[t]], CHANNELS[t], 1) for t in TAPS})

    def config(self) -> dict:
        return {"arch": "student_encoder", "width": self.width}

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None,
                embedded: bool = True) -> dict[str, torch.Tensor]:
        taps = taps or ("relu4_1",)
        unknown = [t for t in taps if t not in TAPS]
        if unknown:
            raise ValueError(f"taps {unknown} are not in the student encoder ({', '.join(TAPS)})")
        wanted = {TAP_INDEX[t]: t for t in taps}
        out = {}
        for i, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                tap = wanted[i]
                # Linear, as the paper's embedding (a ReLU here left half the channels without gradient at the start);
                # it works on unit-scale numbers, so a fresh student starts at the teacher's scale, not 1e-2 of it.
                out[tap] = self.embed[tap](x) * MEAN_ACTIVATION[tap] if embedded else x
        return out
