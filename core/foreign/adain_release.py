"""naoto0804/pytorch-AdaIN's released ``vgg_normalised.pth`` and ``decoder.pth`` (MIT), the PyTorch port of Huang &
Belongie's AdaIN (ICCV 2017).

Conventions there: both files are ``nn.Sequential`` state dicts, so keys are module indices (``'0.weight'``,
``'2.weight'``, ...). The encoder is the "normalised" VGG19 to relu5_4: a 1x1 convolution 3 -> 3 first (the Caffe
BGR/mean conversion baked in, so images are RGB 0-1 as torchvision's ToTensor gives them), then reflection-padded 3x3
convolutions with ReLU, ceil-mode 2x2 max-pools; the test script keeps the first 31 modules (to relu4_1). The decoder
maps relu4_1 features back to an RGB image: reflection-padded 3x3 convolutions, ReLU, nearest upsampling x2, no norms;
it mirrors VGG19, so it has one 256 -> 256 convolution more than Brushstream's VGG16 relu4_1 decoder. AdaIN there
takes the unbiased variance (torch's ``var``) plus 1e-5 under the square root.

The conversion renames the layers onto Brushstream's networks with nothing recomputed: the encoder onto
NormalisedVGGEncoder (conv1..conv14, to relu5_1; relu5_2..relu5_4 are read but left out, no tap uses them), the
decoder onto VGGDecoder("relu4_1", family="vgg19n"). The decoder's metadata names its pair and its statistics
(``input_encoder``: vgg_normalised.pth, found beside it as .pth or converted .safetensors; ``variance``: unbiased), so
``--method adain --level relu4_1 --decoder decoder.pth`` reproduces the release's output; the maxpools agree because
Brushstream pads images to a multiple of the stride first.
"""
from __future__ import annotations

import torch

from ..nets.vgg_decoder import plan as decoder_plan
from ..nets.vgg_normalised import BLOCKS, LEVELS
from . import Converted, ForeignFormat, check_layout

ENCODER_FILE = "vgg_normalised.pth"
LEVEL = "relu4_1"
# The release's VGG19 goes on past relu5_1 (relu5_2..relu5_4): read, not converted.
_TAIL = (("relu5_2", 512, 512), ("relu5_3", 512, 512), ("relu5_4", 512, 512))


def _encoder_layout() -> tuple[list[tuple[str, int, tuple[int, ...]]], dict[str, int]]:
    """(Brushstream name or None, Sequential index, weight shape) of every convolution of the release's VGG19, and
    the index of each tap's convolution."""
    convs: list[tuple[str, int, tuple[int, ...]]] = [("conv1", 0, (3, 3, 1, 1))]
    taps, index = {}, 1   # index of the next module: pad, conv, relu per 3x3 layer, a pool before a block's last
    for level in LEVELS:
        block = BLOCKS[level]
        for i, (name, cin, cout) in enumerate(block):
            if i == len(block) - 1 and level != "relu1_1":
                index += 1
            convs.append((name, index + 1, (cout, cin, 3, 3)))
            index += 3
        taps[level] = convs[-1][1]
    for name, cin, cout in _TAIL:
        convs.append((name, index + 1, (cout, cin, 3, 3)))
        index += 3
    return convs, taps


def _decoder_layout() -> list[tuple[str, int, tuple[int, ...]]]:
    convs, index = [], 0
    for name, cin, cout, relu, up in decoder_plan(LEVEL, "vgg19n"):
        convs.append((name, index + 1, (cout, cin, 3, 3)))   # after its reflection pad
        index += 2 + relu + up
    return convs


ENCODER_CONVS, ENCODER_TAPS = _encoder_layout()
DECODER_CONVS = _decoder_layout()


def _expected(convs) -> dict[str, tuple[int, ...]]:
    out = {}
    for _, index, shape in convs:
        out[f"{index}.weight"], out[f"{index}.bias"] = shape, shape[:1]
    return out


# The files the release's scripts save and read: the whole VGG19, or it cut at relu4_1 / relu5_1; the decoder.
_ENCODER_CUTS = {level: _expected([c for c in ENCODER_CONVS if c[1] <= ENCODER_TAPS[level]])
                 for level in ("relu4_1", "relu5_1")}
_ENCODER_CUTS["relu5_4"] = _expected(ENCODER_CONVS)
_DECODER = _expected(DECODER_CONVS)


def _score(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> float:
    """The share of found and expected keys together that agree (name and shape): 1.0 only for exactly the layout."""
    fit = sum(1 for k, shape in expected.items() if k in tensors and tuple(tensors[k].shape) == shape)
    return fit / len(set(tensors) | set(expected))


def _role(tensors: dict[str, torch.Tensor]) -> tuple[float, str]:
    """The best-fitting layout (score, "encoder:CUT" or "decoder"): told apart by their shapes (the encoder opens with
    a 1x1 convolution 3 -> 3 at index 0, the decoder with a 3x3 512 -> 256 at index 1)."""
    scored = [(_score(tensors, layout), f"encoder:{cut}") for cut, layout in _ENCODER_CUTS.items()]
    scored.append((_score(tensors, _DECODER), "decoder"))
    return max(scored)


def match(tensors: dict[str, torch.Tensor]) -> float:
    return _role(tensors)[0]



def convert(tensors: dict[str, torch.Tensor]) -> Converted:
    _, role = _role(tensors)
    if role == "decoder":
        check_layout(tensors, _DECODER)
        out = {f"{name}.{p}": tensors[f"{index}.{p}"].float().clone()
               for name, index, _ in DECODER_CONVS for p in ("weight", "bias")}
        return Converted("adain", "vgg_decoder", "decoder", out,
                         config={"level": LEVEL, "width": 1.0, "family": "vgg19n"},
                         metadata={"level": LEVEL, "width": "1.0", "family": "vgg19n", "input_encoder": ENCODER_FILE,
                                   "variance": "unbiased"})
    cut = role.split(":")[1]
    check_layout(tensors, _ENCODER_CUTS[cut])
    depth = "relu4_1" if cut == "relu4_1" else "relu5_1"
    out = {f"{name}.{p}": tensors[f"{index}.{p}"].float().clone()
           for name, index, _ in ENCODER_CONVS if index <= ENCODER_TAPS[depth] for p in ("weight", "bias")}
    return Converted("adain", "vgg19n_encoder", "encoder", out, config={"depth": depth},
                     metadata={"family": "vgg19n"})


FORMAT = ForeignFormat(
    name="adain_release",
    summary="pytorch-AdaIN's released normalised VGG19 (vgg_normalised.pth) and relu4_1 decoder (decoder.pth)",
    source="naoto0804/pytorch-AdaIN",
    licence="MIT",
    convention="RGB 0-1 in (the VGG's first 1x1 convolution converts to Caffe BGR minus the mean), reflection "
               "padding; the decoder gives RGB ~0-1 from relu4_1; AdaIN with the unbiased variance + 1e-5",
    reader="state_dict",
    suffixes=(".pth",),
    match=match,
    convert=convert,
)
