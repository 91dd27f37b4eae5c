"""rrmina/fast-neural-style-pytorch (Rusty Mina): the TransformerNetwork state dicts its README links (``mosaic.pth``,
``udnie.pth``, ``starry.pth``, ``bayanihan.pth``, ...) and every network trained with its train.py.

Its conventions: images come from OpenCV, so the network reads BGR, scaled to 0-255 (ToTensor, then x255), and
writes BGR about 0-255 (clipped when saved); ``ConvBlock`` is three reflection-padded convolutions with biases, each
with InstanceNorm2d(affine=True) and a ReLU; five residual blocks conv-norm-relu-conv-norm plus the input;
``DeconvBlock`` upsamples with two transposed convolutions (3x3, stride 2, padding 1, output padding 1) each with
norm and ReLU, then a reflection-padded 9x9 convolution with no norm and a linear output. (The repository's
``TransformerNetworkTanh`` has the same tensors and a 150 x tanh output: a state dict cannot tell the two apart, and
this conversion is the plain network that stylize.py, video.py and webcam.py load.)

The conversion into TransformNet(upsample="transposed") is exact up to float rounding and folds, as
core/foreign/pytorch_examples.py does: BGR 0-255 into the first convolution (input channels reversed, x255) and
into the last one (output channels reversed, /255), so the network takes and returns RGB 0-1; and the biases that
instance norm cancels (a transposed convolution's bias too: it is added everywhere alike). Each residual block's
last norm becomes its ``scale`` and ``shift``: unlike in the pytorch/examples network, the shift is not cancelled
downstream, since the transposed convolution after the trunk turns a constant into a checkerboard pattern.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from . import Converted, ForeignFormat
from .pytorch_examples import check_finite, layout_problem, layout_share

INPUT_SCALE = 255.0
_BLOCK = re.compile(r"^ResidualBlock\.(\d+)\.")


def expected_shapes(width: int, blocks: int) -> dict[str, tuple[int, ...]]:
    w = width
    shapes: dict[str, tuple[int, ...]] = {}

    def layer(name: str, cin: int, cout: int, k: int, norm: bool = True, transposed: bool = False) -> None:
        conv = "conv_transpose" if transposed else "conv_layer"
        shapes[f"{name}.{conv}.weight"] = (cin, cout, k, k) if transposed else (cout, cin, k, k)
        shapes[f"{name}.{conv}.bias"] = (cout,)
        if norm:
            shapes[f"{name}.norm_layer.weight"] = (cout,)
            shapes[f"{name}.norm_layer.bias"] = (cout,)

    layer("ConvBlock.0", 3, w, 9)
    layer("ConvBlock.2", w, 2 * w, 3)
    layer("ConvBlock.4", 2 * w, 4 * w, 3)
    for i in range(blocks):
        layer(f"ResidualBlock.{i}.conv1", 4 * w, 4 * w, 3)
        layer(f"ResidualBlock.{i}.conv2", 4 * w, 4 * w, 3)
    layer("DeconvBlock.0", 4 * w, 2 * w, 3, transposed=True)
    layer("DeconvBlock.2", 2 * w, w, 3, transposed=True)
    layer("DeconvBlock.4", w, 3, 9, norm=False)
    return shapes


def infer_size(contents: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(width, residual blocks) from the shapes; the repository's (32, 5) where they say nothing."""
    width = 32
    for key, axis in (("ConvBlock.0.conv_layer.weight", 0), ("ConvBlock.0.norm_layer.weight", 0),
                      ("DeconvBlock.4.conv_layer.weight", 1)):
        t = contents.get(key)
        if t is not None and t.dim() > axis and t.shape[axis] > 0:
            width = t.shape[axis]
            break
    indices = {int(m.group(1)) for k in contents if (m := _BLOCK.match(k))}
    return width, (max(indices) + 1 if indices else 5)


def match(contents) -> float:
    if not isinstance(contents, Mapping) or not contents:
        return 0.0
    return layout_share(contents, expected_shapes(*infer_size(contents)))


def convert(contents: Mapping[str, torch.Tensor]) -> Converted:
    width, blocks = infer_size(contents)
    problem = layout_problem(contents, expected_shapes(width, blocks))
    if problem:
        raise ValueError(f"a TransformerNetwork of width {width} with {blocks} residual blocks, but {problem}")
    check_finite(contents)
    f = {k: v.detach().float() for k, v in contents.items()}
    out: dict[str, torch.Tensor] = {}

    def conv_norm(ours: str, theirs: str, conv: str = "1", norm: str = "2") -> None:
        out[f"{ours}.{conv}.weight"] = f[f"{theirs}.conv_layer.weight"]   # bias dropped: the norm cancels it
        out[f"{ours}.{norm}.weight"] = f[f"{theirs}.norm_layer.weight"]
        out[f"{ours}.{norm}.bias"] = f[f"{theirs}.norm_layer.bias"]

    conv_norm("body.0", "ConvBlock.0")
    out["body.0.1.weight"] = out["body.0.1.weight"].flip(1) * INPUT_SCALE   # reads RGB 0-1 where it read BGR 0-255
    conv_norm("body.1", "ConvBlock.2")
    conv_norm("body.2", "ConvBlock.4")
    for i in range(blocks):
        ours, theirs = f"body.{3 + i}", f"ResidualBlock.{i}"
        conv_norm(f"{ours}.body.0", f"{theirs}.conv1")
        out[f"{ours}.body.2.weight"] = f[f"{theirs}.conv2.conv_layer.weight"]
        out[f"{ours}.scale"] = f[f"{theirs}.conv2.norm_layer.weight"].reshape(1, -1, 1, 1)
        out[f"{ours}.shift"] = f[f"{theirs}.conv2.norm_layer.bias"].reshape(1, -1, 1, 1)
    for j, theirs in enumerate(("DeconvBlock.0", "DeconvBlock.2")):
        ours = f"body.{3 + blocks + j}"
        out[f"{ours}.0.weight"] = f[f"{theirs}.conv_transpose.weight"]
        out[f"{ours}.1.weight"] = f[f"{theirs}.norm_layer.weight"]
        out[f"{ours}.1.bias"] = f[f"{theirs}.norm_layer.bias"]
    last = f"body.{5 + blocks}.1"
    out[f"{last}.weight"] = f["DeconvBlock.4.conv_layer.weight"].flip(0) / INPUT_SCALE   # writes RGB 0-1
    out[f"{last}.bias"] = f["DeconvBlock.4.conv_layer.bias"].flip(0) / INPUT_SCALE
    return Converted(method="johnson", arch="johnson_transform", role="model",
                     tensors={k: v.contiguous() for k, v in out.items()},
                     config={"width": width, "residual_blocks": blocks, "upsample": "transposed"})


FORMAT = ForeignFormat(
    name="rrmina",
    summary="rrmina/fast-neural-style-pytorch TransformerNetwork (.pth: mosaic, udnie, starry, bayanihan, ...; "
            "transposed-convolution upsampling)",
    source="rrmina/fast-neural-style-pytorch (https://github.com/rrmina/fast-neural-style-pytorch)",
    # No licence file; the README's "License" section, verbatim in substance:
    licence="Copyright (c) 2018 Rusty Mina; free for academic or research use, as long as proper attribution is "
            "given and this copyright notice is retained (README)",
    convention="BGR 0-255 in (OpenCV, ToTensor x255), BGR about 0-255 out (clipped when saved)",
    reader="state_dict",
    suffixes=(".pth",),
    match=match,
    convert=convert,
)
