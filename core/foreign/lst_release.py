"""sunshineatnoon/LinearStyleTransfer's released models (BSD-2-Clause): Li, Liu, Kautz & Yang, "Learning Linear
Transformations for Fast Image and Video Style Transfer", CVPR 2019.

Conventions there (libs/models.py, libs/Matrix.py, TestArtistic.py): images are RGB 0-1; ``vgg_r31.pth`` /
``vgg_r41.pth`` / ``vgg_r51.pth`` are the normalised VGG19 cut at relu3_1 / relu4_1 / relu5_1 (classes encoder3..5:
``conv1`` a 1x1 colour conversion, then ``conv2``.. reflection-padded 3x3 convolutions with ReLU and 2x2 max-pools);
``dec_r31.pth`` / ``dec_r41.pth`` / ``dec_r51.pth`` invert them (decoder3..5: ``conv7``..``conv11``, ``conv11``..
``conv19``, ``conv15``..``conv27``, reflection pads, nearest upsampling). ``r31.pth`` / ``r41.pth`` are the
transformation module (MulLayer): two CNN branches (``cnet`` for the content, ``snet`` for the style: three 3x3
zero-padded convolutions C -> C/2 -> C/4 -> m, then the product of the output with itself over the pixels, not
centred, / HW, then an m*m -> m*m ``fc``), and 1x1 ``compress`` C -> m and ``unzip`` m -> C, both with biases; the
result is unzip(S C compress(content - mean_c)) + mean_s.

The conversion renames the layers onto Brushstream's networks with nothing recomputed: encoders onto
NormalisedVGGEncoder (the same names), decoders onto VGGDecoder(level, family="vgg19n"), the module onto
LinearTransform(covariance="uncentred", bias=True), the authors' MulLayer exactly. The module's file says its level;
r31 pairs with the bundled vgg19_normalised_r31 encoder and decoder (the release's vgg_r31.pth / dec_r31.pth with
keys unchanged), r41 names vgg_r41.pth and dec_r41.pth, found beside it as .pth or converted .safetensors.
"""
from __future__ import annotations

import torch

from ..nets.vgg_decoder import plan as decoder_plan
from ..nets.vgg_normalised import BLOCKS, LEVELS
from . import Converted, ForeignFormat, check_layout

# The release's name for each level, the number of its decoder's first convolution, its files.
LEVEL_TAGS = {"relu3_1": "r31", "relu4_1": "r41", "relu5_1": "r51"}
_DECODER_FIRST = {"relu3_1": 7, "relu4_1": 11, "relu5_1": 15}
# The levels the release trained a transformation module for, by its channel count.
TRANSFORM_LEVEL = {256: "relu3_1", 512: "relu4_1"}
# A level whose pair is not bundled: the module names the release's files (found beside it).
PAIRED_FILES = {"relu4_1": ("vgg_r41.pth", "dec_r41.pth")}


def _params(convs: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    out = {}
    for name, shape in convs.items():
        out[f"{name}.weight"], out[f"{name}.bias"] = shape, shape[:1]
    return out


def _encoder(level: str) -> dict[str, tuple[int, ...]]:
    convs = {"conv1": (3, 3, 1, 1)}
    for lv in LEVELS[:LEVELS.index(level) + 1]:
        convs.update({name: (cout, cin, 3, 3) for name, cin, cout in BLOCKS[lv]})
    return _params(convs)


def _decoder_names(level: str) -> dict[str, str]:
    """The release's layer name -> Brushstream's, for the level's decoder."""
    return {f"conv{_DECODER_FIRST[level] + i}": name for i, (name, *_) in enumerate(decoder_plan(level, "vgg19n"))}


def _decoder(level: str) -> dict[str, tuple[int, ...]]:
    names = _decoder_names(level)
    shapes = {name: (cout, cin, 3, 3) for name, cin, cout, _, _ in decoder_plan(level, "vgg19n")}
    return _params({theirs: shapes[ours] for theirs, ours in names.items()})


def _transform(channels: int, matrix: int) -> dict[str, tuple[int, ...]]:
    c, m = channels, matrix
    branch = {"convs.0": (c // 2, c, 3, 3), "convs.2": (c // 4, c // 2, 3, 3), "convs.4": (m, c // 4, 3, 3),
              "fc": (m * m, m * m)}
    return _params({**{f"{b}.{k}": v for b in ("snet", "cnet") for k, v in branch.items()},
                    "compress": (m, c, 1, 1), "unzip": (c, m, 1, 1)})


def _matrix_size(tensors: dict[str, torch.Tensor]) -> int:
    for key, dim in (("compress.weight", 0), ("unzip.weight", 1), ("snet.convs.4.weight", 0)):
        if key in tensors and tensors[key].dim() > dim:
            return int(tensors[key].shape[dim])
    return 32


def _layouts(tensors: dict[str, torch.Tensor]) -> dict[tuple[str, str], dict[str, tuple[int, ...]]]:
    """Every layout the release saves: (role, level) -> expected name -> shape."""
    m = _matrix_size(tensors)
    layouts = {("encoder", lv): _encoder(lv) for lv in LEVEL_TAGS}
    layouts.update({("decoder", lv): _decoder(lv) for lv in LEVEL_TAGS})
    layouts.update({("model", lv): _transform(c, m) for c, lv in TRANSFORM_LEVEL.items()})
    return layouts


def _score(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> float:
    """The share of found and expected keys together that agree (name and shape): 1.0 only for exactly the layout."""
    fit = sum(1 for k, shape in expected.items() if k in tensors and tuple(tensors[k].shape) == shape)
    return fit / len(set(tensors) | set(expected))


def _best(tensors: dict[str, torch.Tensor]) -> tuple[float, tuple[str, str], dict[str, tuple[int, ...]]]:
    """The layout that explains most of the file: the three kinds are told apart by their names and shapes."""
    return max(((_score(tensors, layout), key, layout) for key, layout in _layouts(tensors).items()),
               key=lambda t: t[0])


def match(tensors: dict[str, torch.Tensor]) -> float:
    return _best(tensors)[0]



def convert(tensors: dict[str, torch.Tensor]) -> Converted:
    _, (role, level), layout = _best(tensors)
    check_layout(tensors, layout)
    if role == "encoder":
        out = {k: tensors[k].float().clone() for k in layout}
        return Converted("lst", "vgg19n_encoder", "encoder", out, config={"depth": level},
                         metadata={"family": "vgg19n"})
    if role == "decoder":
        names = _decoder_names(level)
        out = {f"{names[k.split('.')[0]]}.{k.split('.')[1]}": tensors[k].float().clone() for k in layout}
        return Converted("lst", "vgg_decoder", "decoder", out,
                         config={"level": level, "width": 1.0, "family": "vgg19n"},
                         metadata={"level": level, "width": "1.0", "family": "vgg19n"})
    ours = {"cnet": "content_branch", "snet": "style_branch"}
    out = {".".join([ours.get(k.split(".")[0], k.split(".")[0]), *k.split(".")[1:]]): tensors[k].float().clone()
           for k in layout}
    channels, matrix = int(tensors["compress.weight"].shape[1]), int(tensors["compress.weight"].shape[0])
    metadata = {"level": level, "family": "vgg19n", "styles": "[]"}   # any style: the file names none
    if level in PAIRED_FILES:
        metadata["input_encoder"], metadata["decoder"] = PAIRED_FILES[level]
    return Converted("lst", "lst_transform", "model", out,
                     config={"channels": channels, "matrix": matrix, "covariance": "uncentred", "bias": True},
                     metadata=metadata)


FORMAT = ForeignFormat(
    name="lst_release",
    summary="Linear Style Transfer's released models: transformation modules r31/r41.pth, encoders vgg_r31/r41/r51.pth, "
            "decoders dec_r31/r41/r51.pth",
    source="sunshineatnoon/LinearStyleTransfer",
    licence="BSD-2-Clause",
    convention="RGB 0-1 in (the VGG's first 1x1 convolution converts to Caffe BGR minus the mean), reflection "
               "padding; decoders give RGB ~0-1; the module: uncentred branch covariances, compress/unzip with biases",
    reader="state_dict",
    suffixes=(".pth",),
    match=match,
    convert=convert,
)
