"""pytorch/examples ``fast_neural_style``: the TransformerNet state dicts (``candy.pth``, ``mosaic.pth``, ``udnie.pth``,
``rain_princess.pth`` and every network trained with that script, often saved as ``.model``).

Its conventions: RGB input scaled to 0-255, output about 0-255 (the script clamps when saving); convolutions with
biases behind a reflection pad of kernel // 2; InstanceNorm2d(affine=True) and ReLU after conv1-3 and the two
upsampling convolutions (nearest x2, then pad and convolve); residual blocks conv-in-relu-conv-in plus the input.
Files saved by PyTorch before 0.4 also carry the norms' ``running_mean``/``running_var``, which the example's own
``stylize`` deletes before loading: they are dropped here too (and count as explained).

The conversion into Brushstream's TransformNet (core/nets/johnson.py) is exact up to float rounding and folds:
- the 0-255 input into the first convolution (weights x255), and the 0-255 output into the last one (weights and
  bias /255), so the network takes and returns RGB 0-1;
- the biases of convolutions followed by instance norm, which that norm subtracts again (our ConvLayer has none);
- each residual block's last norm into a per-channel ``scale`` (its weight): its shift only adds a per-channel
  constant to the trunk, which the next instance norm removes (convolution, reflection padding and nearest
  upsampling keep a constant constant), so it is dropped.
Width and block count are read from the shapes (the example's are 32 and 5).
"""
from __future__ import annotations

import re
from typing import Mapping

import torch

from . import Converted, ForeignFormat

INPUT_SCALE = 255.0   # the example's images are 0-255 in and out
_LEGACY = re.compile(r"(?:^|\.)in\d+\.running_(mean|var)$")   # what the example's stylize() deletes
_BLOCK = re.compile(r"^res(\d+)\.")


def expected_shapes(width: int, blocks: int) -> dict[str, tuple[int, ...]]:
    """Every tensor a TransformerNet of this width and residual block count holds, with its shape."""
    w = width
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        shapes[f"{name}.conv2d.weight"] = (cout, cin, k, k)
        shapes[f"{name}.conv2d.bias"] = (cout,)

    def norm(name: str, c: int) -> None:
        shapes[f"{name}.weight"] = (c,)
        shapes[f"{name}.bias"] = (c,)

    conv("conv1", 3, w, 9), norm("in1", w)
    conv("conv2", w, 2 * w, 3), norm("in2", 2 * w)
    conv("conv3", 2 * w, 4 * w, 3), norm("in3", 4 * w)
    for i in range(1, blocks + 1):
        conv(f"res{i}.conv1", 4 * w, 4 * w, 3), norm(f"res{i}.in1", 4 * w)
        conv(f"res{i}.conv2", 4 * w, 4 * w, 3), norm(f"res{i}.in2", 4 * w)
    conv("deconv1", 4 * w, 2 * w, 3), norm("in4", 2 * w)
    conv("deconv2", 2 * w, w, 3), norm("in5", w)
    conv("deconv3", w, 3, 9)
    return shapes


def layout_share(contents: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]],
                 optional: Mapping[str, tuple[int, ...]] = {}) -> float:
    """The share of ``contents`` the layout explains: tensors with an expected name and shape, over everything
    found plus everything expected but missing (so 1.0 means complete and consistent, nothing left over)."""
    explained = sum(1 for k, t in contents.items() if tuple(t.shape) == expected.get(k, optional.get(k)))
    missing = sum(1 for k in expected if k not in contents)
    total = len(contents) + missing
    return explained / total if total else 0.0


def layout_problem(contents: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]],
                   optional: Mapping[str, tuple[int, ...]] = {}) -> str | None:
    """The first thing that keeps ``contents`` from being the layout (for the near-miss line), or None."""
    for k, shape in expected.items():
        if k not in contents:
            return f"{k!r} is missing"
        if tuple(contents[k].shape) != shape:
            return f"{k!r} has shape {tuple(contents[k].shape)}, not {shape}"
    for k, t in contents.items():
        if k not in expected and tuple(t.shape) != optional.get(k):
            return f"{k!r} ({tuple(t.shape)}) is not part of it"
    return None


def infer_size(contents: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    """(width, residual blocks) as the file's shapes say; the example's (32, 5) where they say nothing."""
    width = 32
    for key, axis, div in (("conv1.conv2d.weight", 0, 1), ("in1.weight", 0, 1), ("deconv3.conv2d.weight", 1, 1),
                           ("conv3.conv2d.weight", 0, 4)):
        t = contents.get(key)
        if t is not None and t.dim() > axis and t.shape[axis] % div == 0 and t.shape[axis] > 0:
            width = t.shape[axis] // div
            break
    indices = {int(m.group(1)) for k in contents if (m := _BLOCK.match(k))}
    return width, max(indices, default=5)


def _optional(expected: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The legacy running statistics each norm may carry."""
    return {f"{k[:-len('.weight')]}.running_{s}": shape for k, shape in expected.items()
            if re.search(r"(?:^|\.)in\d+\.weight$", k) for s in ("mean", "var")}


def match(contents) -> float:
    if not isinstance(contents, Mapping) or not contents:
        return 0.0
    expected = expected_shapes(*infer_size(contents))
    return layout_share(contents, expected, _optional(expected))


def check_finite(contents: Mapping[str, torch.Tensor]) -> None:
    """Refuse a file with a NaN or infinity anywhere, also in tensors the conversion drops: the original network
    would not run either, so the file is damaged."""
    for key, t in contents.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"tensor {key!r} holds NaN or infinite values; the file is damaged")


def transform_net_tensors(sd: Mapping[str, torch.Tensor], blocks: int) -> dict[str, torch.Tensor]:
    """TransformNet's state dict from a pytorch/examples TransformerNet's (0-255 RGB), folded as the module says."""
    f = {k: v.detach().float() for k, v in sd.items()}
    out: dict[str, torch.Tensor] = {}

    def conv_in(ours: str, conv: str, norm: str, scale: float = 1.0) -> None:
        out[f"{ours}.1.weight"] = f[f"{conv}.conv2d.weight"] * scale   # the bias goes: the norm cancels it
        out[f"{ours}.2.weight"] = f[f"{norm}.weight"]
        out[f"{ours}.2.bias"] = f[f"{norm}.bias"]

    conv_in("body.0", "conv1", "in1", INPUT_SCALE)
    conv_in("body.1", "conv2", "in2")
    conv_in("body.2", "conv3", "in3")
    for i in range(1, blocks + 1):
        ours = f"body.{2 + i}"
        conv_in(f"{ours}.body.0", f"res{i}.conv1", f"res{i}.in1")
        out[f"{ours}.body.2.weight"] = f[f"res{i}.conv2.conv2d.weight"]
        out[f"{ours}.scale"] = f[f"res{i}.in2.weight"].reshape(1, -1, 1, 1)   # the shift: see the module docstring
    conv_in(f"body.{3 + blocks}.conv", "deconv1", "in4")
    conv_in(f"body.{4 + blocks}.conv", "deconv2", "in5")
    out[f"body.{5 + blocks}.1.weight"] = f["deconv3.conv2d.weight"] / INPUT_SCALE
    out[f"body.{5 + blocks}.1.bias"] = f["deconv3.conv2d.bias"] / INPUT_SCALE
    return {k: v.contiguous() for k, v in out.items()}


def convert(contents: Mapping[str, torch.Tensor]) -> Converted:
    width, blocks = infer_size(contents)
    expected = expected_shapes(width, blocks)
    problem = layout_problem(contents, expected, _optional(expected))
    if problem:
        raise ValueError(f"a TransformerNet of width {width} with {blocks} residual blocks, but {problem}")
    check_finite(contents)
    return Converted(method="johnson", arch="johnson_transform", role="model",
                     tensors=transform_net_tensors(contents, blocks),
                     config={"width": width, "residual_blocks": blocks})


FORMAT = ForeignFormat(
    name="pytorch_examples",
    summary="pytorch/examples fast_neural_style TransformerNet (.pth/.model: candy, mosaic, udnie, rain_princess, "
            "or your own training)",
    source="pytorch/examples fast_neural_style (https://github.com/pytorch/examples/tree/main/fast_neural_style)",
    licence="BSD-3-Clause",
    convention="RGB 0-255 in, RGB about 0-255 out (clamped when saved)",
    reader="state_dict",
    suffixes=(".pth", ".model", ".pt"),
    match=match,
    convert=convert,
)
