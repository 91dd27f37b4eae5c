"""A slim VGG16-shaped encoder distilled from the ImageNet VGG16 (Collaborative Distillation, Wang et al., CVPR 2020):
every convolution has ``width`` times the teacher's channels, and a 1x1 linear embedding per tap maps the student's
features into the teacher's space, so the teacher's AdaIN statistics and decoders apply to them unchanged.
Deviation: the embedding is kept at inference (the paper trains a student decoder on the student's own features);
here the relu4_1 embedding feeds the teacher's decoder, or a slim decoder trained on the embedded features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .prune import fit_linear_map, fit_slim_conv, most_active
from .vgg16 import _CAFFE_MEAN_BGR, _CFG, TAP_INDEX
from .vgg16_encoder import CHANNELS, MEAN_ACTIVATION

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


class StudentEncoder(nn.Module):
    """RGB [0, 1] -> {tap: teacher-space features} for taps relu1_1..relu4_1 (``embedded=False``: the student's own)."""

    def __init__(self, width: float = 0.25, centred: bool = True):
        super().__init__()
        if not 0 < width <= 1:
            raise ValueError(f"student width must be in (0, 1], got {width}")
        self.width, self.centred = width, centred
        # Inputs are centred on the ImageNet mean colour (RGB 0..1) before the first convolution, as VGG16's are, so
        # its zero padding means the same colour as the teacher's and a pruned start is exact, border included
        # (files from before the option have centred=False).
        shift = torch.tensor(_CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255.0 if centred else torch.zeros(1, 3, 1, 1)
        self.register_buffer("input_shift", shift, persistent=False)
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
        return {"arch": "student_encoder", "width": self.width, "centred": self.centred}

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None,
                embedded: bool = True) -> dict[str, torch.Tensor]:
        taps = taps or ("relu4_1",)
        unknown = [t for t in taps if t not in TAPS]
        if unknown:
            raise ValueError(f"taps {unknown} are not in the student encoder ({', '.join(TAPS)})")
        wanted = {TAP_INDEX[t]: t for t in taps}
        out = {}
        x = x - self.input_shift.to(x.dtype)
        for i, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                tap = wanted[i]
                # Linear, as the paper's embedding (a ReLU here left half the channels without gradient at the start);
                # it works on unit-scale numbers, so a fresh student starts at the teacher's scale, not 1e-2 of it.
                out[tap] = self.embed[tap](x) * MEAN_ACTIVATION[tap] if embedded else x
        return out


@torch.no_grad()
def start_from_teacher(student: StudentEncoder, teacher: nn.Module, images: torch.Tensor) -> None:
    """Prune the VGG16 teacher (a VGG16Encoder) into ``student`` with layer-wise reconstruction on ``images``
    (core/nets/prune.py), then fit each tap's embedding by least squares, so the student's embedded features start
    as close to the teacher's as its channels allow. The first convolution keeps its most active rows with the
    teacher's Caffe scale and channel order folded in (the mean is the student's fixed input shift): exact."""
    if not student.centred:
        raise ValueError("a pruned start needs a student that centres its input (centred=True)")
    first = teacher.features[0]
    in_weight = teacher.input_weight[:, :, 0, 0].to(first.weight.dtype)   # (caffe channel, rgb channel)
    wide_x = first(F.conv2d(images, teacher.input_weight, teacher.input_bias))
    keep = most_active(wide_x, student.features[0].out_channels)
    student.features[0].weight.copy_(torch.einsum("ockl,cr->orkl", first.weight, in_weight)[keep])
    student.features[0].bias.copy_(first.bias[keep])
    slim_x, own, target = student.features[0](images - student.input_shift), {}, {}
    taps = {TAP_INDEX[t]: t for t in TAPS}
    for i in range(1, len(student.features)):   # layer 0 is set above
        wide, slim = teacher.features[i], student.features[i]
        if isinstance(slim, nn.Conv2d):
            _, wide_x, slim_x = fit_slim_conv(wide, slim, wide_x, slim_x)
        else:
            wide_x, slim_x = wide(wide_x), slim(slim_x)
        if i in taps:
            own[taps[i]], target[taps[i]] = slim_x, wide_x
    for tap in TAPS:
        fit_linear_map(own[tap], target[tap] / MEAN_ACTIVATION[tap], student.embed[tap])
