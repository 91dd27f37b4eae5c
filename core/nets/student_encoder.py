"""A slim VGG-shaped encoder distilled from a teacher (Collaborative Distillation, Wang et al., CVPR 2020): every
convolution has ``width`` times the teacher's channels, and a 1x1 linear embedding per tap maps the student's features
into the teacher's space, so the teacher's AdaIN statistics and decoders apply to them unchanged. Two teachers:
``vgg16`` (the ImageNet VGG16 to relu4_1, zero padding) and ``vgg19n`` (the bundled normalised VGG19 to relu3_1,
reflection padding, its 1x1 colour convolution folded into the first 3x3 one; both have the same plan up to relu3_1).
Deviation: the embedding is kept at inference (the paper trains a student decoder on the student's own features);
here the deepest embedding feeds the teacher's decoder, or a slim decoder trained on the embedded features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .prune import fit_linear_map, fit_slim_conv, most_active
from .vgg16 import _CAFFE_MEAN_BGR, _CFG, TAP_INDEX
from .vgg16_encoder import CHANNELS, MEAN_ACTIVATION

TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
TEACHERS = ("vgg16", "vgg19n")
# Per teacher: its taps, and the unit its features are embedded in (the normalised VGG19's are unit-scale already:
# mean activations 0.93 / 0.88 / 0.83 on the content photos).
TEACHER_TAPS = {"vgg16": TAPS, "vgg19n": TAPS[:3]}
TEACHER_UNIT = {"vgg16": MEAN_ACTIVATION, "vgg19n": dict.fromkeys(TAPS[:3], 1.0)}
# The teacher whose features a student stands in for at each AdaIN level.
LEVEL_TEACHER = {"relu4_1": "vgg16", "relu3_1": "vgg19n"}


class StudentEncoder(nn.Module):
    """RGB [0, 1] -> {tap: teacher-space features} for the teacher's taps, relu1_1..relu4_1 (VGG16) or ..relu3_1
    (the normalised VGG19); ``embedded=False``: the student's own features."""

    def __init__(self, width: float = 0.25, centred: bool = True, teacher: str = "vgg16"):
        super().__init__()
        if not 0 < width <= 1:
            raise ValueError(f"student width must be in (0, 1], got {width}")
        if teacher not in TEACHERS:
            raise ValueError(f"student teacher must be one of {TEACHERS}, got {teacher!r}")
        # The normalised VGG19 pads by reflection, so a constant input shift folds into the first bias: none needed.
        centred = centred and teacher == "vgg16"
        self.width, self.centred, self.teacher = width, centred, teacher
        self.taps, self.unit = TEACHER_TAPS[teacher], TEACHER_UNIT[teacher]
        deepest = TAP_INDEX[self.taps[-1]]
        padding_mode = "reflect" if teacher == "vgg19n" else "zeros"
        # Inputs are centred on the ImageNet mean colour (RGB 0..1) before the first convolution, as VGG16's are, so
        # its zero padding means the same colour as the teacher's and a pruned start is exact, border included
        # (files from before the option have centred=False).
        shift = torch.tensor(_CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255.0 if centred else torch.zeros(1, 3, 1, 1)
        self.register_buffer("input_shift", shift, persistent=False)
        layers: list[nn.Module] = []
        cin, own = 3, {}
        for v in _CFG:
            if len(layers) > deepest:
                break
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = max(8, round(v * width))
                layers += [nn.Conv2d(cin, cout, 3, padding=1, padding_mode=padding_mode), nn.ReLU()]
                cin = cout
                own[len(layers) - 1] = cout
        self.features = nn.Sequential(*layers[: deepest + 1])
        self.embed = nn.ModuleDict({t: nn.Conv2d(own[TAP_INDEX[t]], CHANNELS[t], 1) for t in self.taps})

    def config(self) -> dict:
        return {"arch": "student_encoder", "width": self.width, "centred": self.centred, "teacher": self.teacher}

    def forward(self, x: torch.Tensor, taps: tuple[str, ...] | None = None,
                embedded: bool = True) -> dict[str, torch.Tensor]:
        taps = taps or (self.taps[-1],)
        unknown = [t for t in taps if t not in self.taps]
        if unknown:
            raise ValueError(f"taps {unknown} are not in the student encoder ({', '.join(self.taps)})")
        wanted = {TAP_INDEX[t]: t for t in taps}
        out = {}
        x = x - self.input_shift.to(x.dtype)
        for i, layer in enumerate(self.features[: max(wanted) + 1]):
            x = layer(x)
            if i in wanted:
                tap = wanted[i]
                # Linear, as the paper's embedding (a ReLU here left half the channels without gradient at the start);
                # it works on unit-scale numbers, so a fresh student starts at the teacher's scale, not 1e-2 of it.
                out[tap] = self.embed[tap](x) * self.unit[tap] if embedded else x
        return out


@torch.no_grad()
def start_from_teacher(student: StudentEncoder, teacher: nn.Module, images: torch.Tensor) -> None:
    """Prune the teacher (a VGG16Encoder or a NormalisedVGGEncoder, as ``student.teacher`` says) into ``student`` with
    layer-wise reconstruction on ``images`` (core/nets/prune.py), then fit each tap's embedding by least squares, so the
    student's embedded features start as close to the teacher's as its channels allow. The first convolution keeps
    its most active rows with the teacher's input convention folded in (VGG16's Caffe scale and channel order, the
    mean being the student's fixed input shift; the normalised VGG19's 1x1 colour convolution): exact."""
    if student.teacher == "vgg16" and not student.centred:
        raise ValueError("a pruned start needs a student that centres its input (centred=True)")
    weight, bias, wide = (_vgg16_plan if student.teacher == "vgg16" else _vgg19n_plan)(teacher)
    mode = "constant" if student.features[0].padding_mode == "zeros" else student.features[0].padding_mode
    wide_x = F.conv2d(F.pad(images - student.input_shift, (1, 1, 1, 1), mode=mode), weight, bias)
    keep = most_active(wide_x, student.features[0].out_channels)
    student.features[0].weight.copy_(weight[keep])
    student.features[0].bias.copy_(bias[keep])
    slim_x, own, target = student.features[0](images - student.input_shift), {}, {}
    taps = {TAP_INDEX[t]: t for t in student.taps}
    for i in range(1, len(student.features)):   # layer 0 is set above
        wide_layer, slim = wide[i], student.features[i]
        if isinstance(slim, nn.Conv2d):
            _, wide_x, slim_x = fit_slim_conv(wide_layer, slim, wide_x, slim_x)
        else:
            wide_x, slim_x = wide_layer(wide_x), slim(slim_x)
        if i in taps:
            own[taps[i]], target[taps[i]] = slim_x, wide_x
    for tap in student.taps:
        fit_linear_map(own[tap], target[tap] / student.unit[tap], student.embed[tap])


def _vgg16_plan(teacher: nn.Module) -> tuple[torch.Tensor, torch.Tensor, nn.Sequential]:
    """VGG16's first convolution over RGB 0..1 inputs centred on the mean colour, and its layers (the student's
    plan)."""
    first = teacher.features[0]
    in_weight = teacher.input_weight[:, :, 0, 0].to(first.weight.dtype)   # (caffe channel, rgb channel)
    return torch.einsum("ockl,cr->orkl", first.weight, in_weight), first.bias, teacher.features


def _vgg19n_plan(teacher: nn.Module) -> tuple[torch.Tensor, torch.Tensor, nn.Sequential]:
    """The normalised VGG19 as a full-width student (reflection-padded convolutions, the same plan), its colour
    convolution folded into the first 3x3 one (a per-pixel affine map commutes with reflection padding)."""
    colour_w, colour_b = teacher.conv1.weight[:, :, 0, 0], teacher.conv1.bias
    weight = torch.einsum("ockl,cr->orkl", teacher.conv2.weight, colour_w)
    bias = teacher.conv2.bias + torch.einsum("ockl,c->o", teacher.conv2.weight, colour_b)
    full = StudentEncoder(1.0, teacher="vgg19n").to(weight.device)
    convs = [m for m in full.features if isinstance(m, nn.Conv2d)]
    for slim, source in zip(convs[1:], (teacher.conv3, teacher.conv4, teacher.conv5, teacher.conv6)):
        slim.weight.copy_(source.weight)
        slim.bias.copy_(source.bias)
    return weight, bias, full.features
