"""The ONNX model zoo's fast_neural_style set (onnx/models, validated/vision/style_transfer/fast_neural_style: candy,
mosaic, pointilism, rain_princess, udnie; opset 8 and 9), and any other ONNX image-to-image style network.

Its conventions: one float input (1, 3, H, W), RGB 0-255 (the zoo's files declare 224x224), one output of the same
shape, about 0-255 (the zoo's example clips it). The zoo's networks are pytorch/examples TransformerNets exported to
ONNX, so when a graph's structure is that network's (walked node by node, in order: reflection Pad, Conv,
InstanceNormalization, Relu, the residual Adds, nearest Upsample/Resize by 2; matched by structure, not by the
initializers' names, which exporters choose), its weights are read with onnx.numpy_helper and converted into
TransformNet exactly as core/foreign/pytorch_examples.py does (the same folds: 0-255 in and out, the biases instance
norm cancels, the residual shift), and checked against the graph itself run by ONNX Runtime once.

Any other graph with one float (N, 3, H, W) input and one (N, 3, H, W) output, 0-255 in and out as the zoo's, is
kept as it is: its bytes go into the Brushstream file as a uint8 tensor (arch ``onnx_transform``, core/runtime.py's
GraphNet) and the johnson method runs it through ONNX Runtime with the input and output scaling wrapped around it.
It must run at another batch and size than it was exported at (it is tried once). Graphs of another interface are
refused. Both kinds match fully, since both convert faithfully: this format claims every image-to-image ONNX graph.

The style name is the file's: files carry no style name, so the johnson method names the style after the original
file's stem, without the zoo's opset suffix (``candy-9.onnx`` -> ``candy``, ``rain-princess-8.onnx`` ->
``rain_princess``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..runtime import GRAPH_ARCH, image_graph_problems, wrap_image_graph
from . import Converted, ForeignFormat, pytorch_examples

INPUT_SCALE = 255.0
_EPS = 1e-5   # InstanceNorm2d's, which TransformNet uses
# Nearest 2x resizes that pick source pixel floor(x / 2), as PyTorch's nearest interpolation does.
_NEAREST = {("asymmetric", "floor"), ("asymmetric", "round_prefer_floor"), ("half_pixel", "round_prefer_floor"),
            ("pytorch_half_pixel", "round_prefer_floor")}


class _Mismatch(Exception):
    """The graph is not a pytorch/examples TransformerNet (it may still run as an opaque graph)."""


class _Graph:
    """The graph's nodes on the path from its input, and the constant values (initializers, Constant nodes and what
    is computed from them alone) the walk asks for."""

    def __init__(self, model):
        graph = model.graph
        self.model = model
        self.values: dict[str, np.ndarray] = {}
        from onnx import numpy_helper

        for init in graph.initializer:
            self.values[init.name] = numpy_helper.to_array(init)
        weights = set(self.values)
        self.input = next(i.name for i in graph.input if i.name not in weights)
        self.output = graph.output[0].name
        self.producer = {out: node for node in graph.node for out in node.output}
        data = {self.input}
        self.nodes = []
        for node in graph.node:
            if any(name in data for name in node.input):
                self.nodes.append(node)
                data.update(node.output)
        self.data = data

    def value(self, name: str) -> np.ndarray:
        if name in self.values:
            return self.values[name]
        if not name or name in self.data or name not in self.producer:
            raise _Mismatch(f"{name!r} is not a constant")
        node = self.producer[name]
        from onnx import helper, numpy_helper

        if node.op_type == "Constant":
            attr = node.attribute[0]
            value = numpy_helper.to_array(attr.t) if attr.name == "value" else np.array(helper.get_attribute_value(attr))
        elif node.op_type == "Identity":
            value = self.value(node.input[0])
        else:   # a small computation on constants (opset 11 exports build Pad's amounts this way)
            from onnx.reference import ReferenceEvaluator

            inputs = [self.value(i) if i else None for i in node.input]
            try:
                results = ReferenceEvaluator(node).run(None, {i: v for i, v in zip(node.input, inputs) if i})
            except Exception as exc:
                raise _Mismatch(f"cannot evaluate {node.op_type} ({exc})") from None
            for out, result in zip(node.output, results):
                self.values[out] = np.asarray(result)
            return self.values[name]
        self.values[name] = np.asarray(value)
        return self.values[name]


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _Walk:
    """A cursor along the graph's data path: each step takes the next node, which must be of the given kind and
    read the tensor the previous step produced."""

    def __init__(self, graph: _Graph):
        self.g, self.pos, self.cur = graph, 0, graph.input

    def peek(self) -> str | None:
        return self.g.nodes[self.pos].op_type if self.pos < len(self.g.nodes) else None

    def take(self, *ops: str):
        if self.peek() not in ops:
            raise _Mismatch(f"node {self.pos}: {self.peek()} where {'/'.join(ops)} was expected")
        node = self.g.nodes[self.pos]
        if node.op_type != "Add":   # an Add's two inputs are checked by the residual block
            if node.input[0] != self.cur:
                raise _Mismatch(f"node {self.pos} ({node.op_type}) does not read the previous node's output")
            if any(i in self.g.data for i in node.input[1:]):
                raise _Mismatch(f"node {self.pos} ({node.op_type}) mixes two data paths")
        self.pos += 1
        self.cur = node.output[0]
        return node

    def conv(self, stride: int) -> tuple[np.ndarray, np.ndarray]:
        pad = self.take("Pad")
        conv = self.take("Conv")
        pa, ca = _attrs(pad), _attrs(conv)
        weight = self.g.value(conv.input[1])
        bias = self.g.value(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(weight.shape[0],
                                                                                                   np.float32)
        k = weight.shape[-1]
        pads = pa["pads"] if "pads" in pa else self.g.value(pad.input[1]).tolist()
        if pa.get("mode", "constant") != "reflect" or list(pads) != [0, 0, k // 2, k // 2, 0, 0, k // 2, k // 2]:
            raise _Mismatch(f"padding {pa.get('mode')} {pads}, not a reflection pad of {k // 2}")
        if weight.ndim != 4 or weight.shape[-2] != k or ca.get("group", 1) != 1 or \
                any(ca.get("pads", [0] * 4)) or set(ca.get("dilations", [1, 1])) != {1} or \
                list(ca.get("strides", [1, 1])) != [stride, stride] or ca.get("auto_pad", "NOTSET") != "NOTSET":
            raise _Mismatch(f"convolution {weight.shape} {ca} is not the one expected (stride {stride})")
        return weight, bias

    def norm(self) -> tuple[np.ndarray, np.ndarray]:
        node = self.take("InstanceNormalization")
        if abs(_attrs(node).get("epsilon", 1e-5) - _EPS) > 1e-9:
            raise _Mismatch("instance norm with another epsilon")
        return self.g.value(node.input[1]), self.g.value(node.input[2])

    def upsample(self) -> None:
        node = self.take("Upsample", "Resize")
        a = _attrs(node)
        if a.get("mode", "nearest") != "nearest":
            raise _Mismatch(f"{a.get('mode')} resize")
        if node.op_type == "Resize" and len(node.input) > 2:   # opset 11+: X, roi, scales[, sizes]
            if len(node.input) > 3 and node.input[3]:
                raise _Mismatch("a resize to computed sizes")
            pair = (a.get("coordinate_transformation_mode", "half_pixel"), a.get("nearest_mode", "round_prefer_floor"))
            if pair not in _NEAREST:
                raise _Mismatch(f"nearest resize with {pair}")
            scales = self.g.value(node.input[2])
        else:   # Upsample (opset 7-9, scales an attribute before 9) or Resize opset 10 (X, scales)
            scales = np.asarray(a["scales"]) if "scales" in a else self.g.value(node.input[1])
        if [float(s) for s in np.asarray(scales).ravel()] != [1.0, 1.0, 2.0, 2.0]:
            raise _Mismatch(f"resize by {scales}")


def _examples_state_dict(model) -> dict[str, torch.Tensor]:
    """The pytorch/examples TransformerNet state dict the graph computes, read by walking its structure."""
    g = _Graph(model)
    walk = _Walk(g)
    sd: dict[str, torch.Tensor] = {}

    def put(prefix: str, pair) -> None:
        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"] = (torch.from_numpy(np.array(v, dtype=np.float32)) for v in pair)

    for i, stride in enumerate((1, 2, 2), 1):
        put(f"conv{i}.conv2d", walk.conv(stride))
        put(f"in{i}", walk.norm())
        walk.take("Relu")
    blocks = 0
    while walk.peek() == "Pad":
        blocks += 1
        trunk = walk.cur
        put(f"res{blocks}.conv1.conv2d", walk.conv(1))
        put(f"res{blocks}.in1", walk.norm())
        walk.take("Relu")
        put(f"res{blocks}.conv2.conv2d", walk.conv(1))
        put(f"res{blocks}.in2", walk.norm())
        branch = walk.cur
        add = walk.take("Add")
        if sorted(add.input) != sorted([branch, trunk]):
            raise _Mismatch("a residual Add that does not add the block's input")
    for conv, norm in (("deconv1", "in4"), ("deconv2", "in5")):
        walk.upsample()
        put(f"{conv}.conv2d", walk.conv(1))
        put(norm, walk.norm())
        walk.take("Relu")
    put("deconv3.conv2d", walk.conv(1))
    if walk.pos != len(g.nodes) or walk.cur != g.output:
        raise _Mismatch("the graph goes on after the last convolution")
    if pytorch_examples.match(sd) < 1.0:
        raise _Mismatch("the weights' shapes are not one TransformerNet's")
    return sd


def _run(raw: bytes, x: np.ndarray) -> np.ndarray:
    """The graph wrapped to RGB 0-1 (core/runtime.py), run once by ONNX Runtime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    session = ort.InferenceSession(wrap_image_graph(raw, INPUT_SCALE), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _probe() -> np.ndarray:
    return np.random.default_rng(0).random((2, 3, 32, 48), dtype=np.float32)


def match(contents) -> float:
    """1.0 for a graph with an image network's interface (converted into TransformNet or kept as it is); else the
    share of that interface it has: one of its one input and one output an image."""
    if not hasattr(contents, "graph"):
        return 0.0
    problems = image_graph_problems(contents)
    sides = sum(1 for p in problems if " input" in p or " output" in p)
    return 0.0 if len(problems) > sides else 1.0 - sides / 2


def _check_finite(model) -> None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"initializer {init.name!r} holds NaN or infinite values; the file is damaged")


def convert(model) -> Converted:
    problems = image_graph_problems(model)
    if problems:
        raise ValueError(f"not an image-to-image graph: {'; '.join(problems)}")
    _check_finite(model)
    raw = model.SerializeToString()
    try:
        sd = _examples_state_dict(model)
    except _Mismatch:
        sd = None
    if sd is not None:
        converted = pytorch_examples.convert(sd)
        from ..nets.johnson import TransformNet

        net = TransformNet(**converted.config).eval()
        net.load_state_dict(converted.tensors)
        x = _probe()
        with torch.inference_mode():
            ours = net(torch.from_numpy(x)).numpy()
        theirs = _run(raw, x)
        if np.abs(ours - theirs).max() <= 1e-3 * max(1.0, float(np.abs(theirs).max())):
            return converted
        # A structure that reads like the example's but computes something else: keep the graph as it is.
    try:
        out = _run(raw, _probe())
    except Exception as exc:   # ONNX Runtime's own error types
        raise ValueError(f"the graph does not run at another batch and size than it was exported at "
                         f"({' '.join(str(exc).split())[:120]})") from None
    if out.shape != _probe().shape:
        raise ValueError(f"the graph turns a {'x'.join(map(str, _probe().shape))} image into "
                         f"{'x'.join(map(str, out.shape))}, not an image of the same size")
    graph = torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()
    return Converted(method="johnson", arch=GRAPH_ARCH, role="model", tensors={"graph": graph},
                     config={"graph_bytes": len(raw), "scale": INPUT_SCALE})


FORMAT = ForeignFormat(
    name="onnx_zoo",
    summary="ONNX model zoo fast_neural_style (.onnx: candy, mosaic, pointilism, rain_princess, udnie) into "
            "TransformNet; any other RGB image-to-image .onnx graph (0-255) run as-is by ONNX Runtime",
    source="onnx/models, validated/vision/style_transfer/fast_neural_style (https://github.com/onnx/models), "
           "exported from pytorch/examples fast_neural_style",
    licence="BSD-3-Clause",
    convention="RGB 0-255 in, (1, 3, H, W) float; RGB about 0-255 out (clipped when saved)",
    reader="onnx",
    suffixes=(".onnx",),
    match=match,
    convert=convert,
)
