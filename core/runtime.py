"""Running a small feed-forward network as fast as the device allows (the real-time methods' inference path).

Backends: ``eager`` (PyTorch; channels_last on CUDA) and ``onnx`` (the network exported once with dynamic
height and width, run by ONNX Runtime on the CPU). ``auto`` runs the backends in turn on the first frames of each
new size (every call's output is used, so a single still costs one run, not a timing contest), times the
second run of each and keeps the faster one from then on: on this project's 2-core CPU ONNX Runtime wins clearly, and
more so when other processes
share the cores (PyTorch's OpenMP threads wait on each other), but which one wins depends on the CPU, so it is
measured rather than assumed. Outputs agree to about 1e-6 (tested). ``threads`` sets both backends' threads.

``GraphNet`` is a network that exists only as an ONNX graph (one imported as-is from another project, which our
modules cannot rebuild): the runner takes its graph instead of exporting, so it runs on ONNX Runtime under every
setting, through the same session options.
"""
from __future__ import annotations

import copy
import io
import time
import warnings

import torch
from torch import nn

from .errors import BrushstreamError

RUNTIMES = ("auto", "eager", "onnx")


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def _with_weights(graph: bytes, net: nn.Module) -> bytes | None:
    """``graph`` with every weight replaced by ``net``'s tensor of the same name, or None when some weight has no
    same-named, same-shaped tensor in ``net`` (then the caller exports afresh)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(graph)
    tensors = net.state_dict()
    for initializer in model.graph.initializer:
        tensor = tensors.get(initializer.name)
        if tensor is None or tuple(tensor.shape) != tuple(initializer.dims):
            return None
        initializer.CopyFrom(numpy_helper.from_array(tensor.detach().float().cpu().numpy(), initializer.name))
    return model.SerializeToString()


class FastRunner:
    """Calls ``net(x)`` through the chosen backend; ``chosen`` says which one ran last (for figures and tests)."""

    def __init__(self, net: nn.Module, runtime: str = "auto", threads: int = 0):
        if runtime not in RUNTIMES:
            raise BrushstreamError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if runtime == "onnx" and not onnx_available():
            raise BrushstreamError("runtime 'onnx' needs onnx and onnxruntime (pip install onnx onnxruntime)")
        self.net, self.runtime, self.threads = net, runtime, int(threads)
        self.chosen = "eager" if runtime == "auto" else runtime
        self._session = None
        self._graph: bytes | None = None       # the ONNX model this runner's session runs
        self._template: bytes | None = None    # a same-architecture graph to take instead of exporting
        self._picked: dict[tuple, str] = {}
        self._trials: dict[tuple, list[tuple[str, float]]] = {}   # (backend, seconds) of each call at a size

    def for_network(self, net: nn.Module) -> "FastRunner":
        """A runner for a network of the same architecture with other weights (a stream's next folded copy): same
        backend, threads and choices made, and this runner's ONNX graph with the new weights put in, which
        takes milliseconds where an export takes a third of a second."""
        runner = FastRunner(net, self.runtime, self.threads)
        runner._picked = dict(self._picked)
        runner._template = self._graph
        return runner

    # -- backends ---------------------------------------------------------------------------------
    def _eager(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def _onnx_session(self):
        if self._session is None:
            import onnxruntime as ort

            self._graph = (self._template is not None and _with_weights(self._template, self.net)) or self._export()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads or torch.get_num_threads()
            options.inter_op_num_threads = 1
            # No busy-waiting between frames: spinning workers would take the cores that capture, encoding and
            # the host (OBS) need between two frames, and slow PyTorch work running in the same process.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(self._graph, options, providers=["CPUExecutionProvider"])
        return self._session

    def _export(self) -> bytes:
        if isinstance(self.net, GraphNet):
            return self.net.onnx_graph()
        buffer = io.BytesIO()
        example = torch.rand(1, 3, 64, 64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the exporter's notes on instance norm and tracing
            torch.onnx.export(copy.deepcopy(self.net).cpu().float().eval(), (example,), buffer, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}},
                              opset_version=17, dynamo=False)
        return buffer.getvalue()

    def _onnx(self, x: torch.Tensor) -> torch.Tensor:
        session = self._onnx_session()
        out = session.run(None, {session.get_inputs()[0].name: x.detach().float().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.dtype)

    # -- choice -------------------------------------------------------------------------------------
    def _usable(self, x: torch.Tensor) -> list[str]:
        if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_autocast_enabled("cpu") \
                or not onnx_available():
            return ["eager"]
        return ["onnx"] if isinstance(self.net, GraphNet) else ["eager", "onnx"]   # a graph's eager is ONNX Runtime too

    def _run_auto(self, x: torch.Tensor) -> torch.Tensor:
        """One call under ``auto``: the picked backend once this size has one; until then the backends in turn,
        a warm-up round (export, allocation) and then a timed round, each call's output being a real one."""
        key = (tuple(x.shape), x.device.type, x.dtype)
        if key in self._picked:
            self.chosen = self._picked[key]
            return getattr(self, "_" + self.chosen)(x)
        candidates = self._usable(x)
        trials = self._trials.setdefault(key, [])
        self.chosen = candidates[len(trials) % len(candidates)]
        start = time.perf_counter()
        out = getattr(self, "_" + self.chosen)(x)
        trials.append((self.chosen, time.perf_counter() - start))
        if len(trials) >= 2 * len(candidates):
            timed = dict(trials[len(candidates):])
            self._picked[key] = min(timed, key=timed.get)
            del self._trials[key]
        return out

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.threads and x.device.type == "cpu" and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        if self.runtime == "auto":
            return self._run_auto(x)
        if self.runtime == "onnx" and "onnx" not in self._usable(x):
            raise BrushstreamError("runtime 'onnx' runs float32 on the CPU only; use eager for GPU or bf16")
        return getattr(self, "_" + self.chosen)(x)


# -- networks that are ONNX graphs ------------------------------------------------------------------------------------

GRAPH_ARCH = "onnx_transform"


def image_graph_problems(model) -> list[str]:
    """Why ``model`` (an onnx.ModelProto) cannot run as an image network, one entry per side (its input, its output)
    and one for its opset; empty when it can: one float input and one output, both 4-D with 3 channels, and an opset
    whose Mul/Div broadcast (7 or later)."""
    from onnx import TensorProto

    graph = model.graph
    weights = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]   # old IR versions list weights as inputs too
    problems = []
    for role, values in (("input", inputs), ("output", list(graph.output))):
        if len(values) != 1:
            problems.append(f"it has {len(values)} {role}s, not one image")
            continue
        kind = values[0].type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim]
        if kind.elem_type != TensorProto.FLOAT or len(dims) != 4 or dims[1] != 3:
            shown = "x".join("?" if d is None else str(d) for d in dims) or "of unknown shape"
            problems.append(f"its {role} {values[0].name!r} is {TensorProto.DataType.Name(kind.elem_type).lower()} "
                            f"{shown}, not a float (N, 3, H, W) image")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 7:
        problems.append(f"opset {opset} (7 or later is needed)")
    return problems


def wrap_image_graph(raw: bytes, scale: float = 1.0) -> bytes:
    """An image graph taking and returning RGB 0-1: its input multiplied by ``scale`` and its output divided by it,
    batch, height and width left free (a graph exported at one size declares that size)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(raw)
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    inp = next(i for i in graph.input if i.name not in weights)
    out = graph.output[0]
    for value in (inp, out):
        for axis, name in ((0, "batch"), (2, "height"), (3, "width")):
            dim = value.type.tensor_type.shape.dim[axis]
            dim.Clear()
            dim.dim_param = name
    del graph.value_info[:]   # shapes recorded at the export size would contradict other sizes
    if scale != 1.0:
        taken = {n for node in graph.node for n in (*node.input, *node.output)} | weights | {inp.name, out.name}

        def fresh(stem: str) -> str:
            name, i = stem, 0
            while name in taken:
                i += 1
                name = f"{stem}_{i}"
            taken.add(name)
            return name

        inner_in, inner_out = inp.name, out.name
        rgb_in, rgb_out, k_in, k_out = (fresh(f"brushstream_{n}") for n in ("rgb_in", "rgb_out", "scale", "unscale"))
        const = numpy_helper.from_array(np.array(scale, dtype=np.float32))
        nodes = [helper.make_node("Constant", [], [k_in], value=const),
                 helper.make_node("Mul", [rgb_in, k_in], [inner_in])]
        tail = [helper.make_node("Constant", [], [k_out], value=const),
                helper.make_node("Div", [inner_out, k_out], [rgb_out])]
        rest = list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes + rest + tail)
        inp.name, out.name = rgb_in, rgb_out
    return model.SerializeToString()


class GraphNet(nn.Module):
    """An image network that is an ONNX graph, kept byte for byte in the ``graph`` buffer (so it travels in a
    safetensors file like any weights) and run by ONNX Runtime on the CPU: RGB [0, 1] (B, 3, H, W) in and out, the
    graph's own input range ``scale`` (255 for the ONNX model zoo's) handled by the wrapper around it."""

    def __init__(self, graph_bytes: int, scale: float = 1.0):
        super().__init__()
        self.scale = float(scale)
        self.register_buffer("graph", torch.zeros(int(graph_bytes), dtype=torch.uint8))
        self._wrapped: bytes | None = None
        self._session = None

    @classmethod
    def from_graph(cls, raw: bytes, scale: float = 1.0) -> "GraphNet":
        net = cls(len(raw), scale)
        net.graph.copy_(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
        return net

    def config(self) -> dict:
        return {"arch": GRAPH_ARCH, "graph_bytes": self.graph.numel(), "scale": self.scale}

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._wrapped = self._session = None   # new bytes: a new graph

    def onnx_graph(self) -> bytes:
        """The graph as FastRunner runs it: RGB 0-1 in and out, any batch and size."""
        if self._wrapped is None:
            if not onnx_available():
                raise BrushstreamError("this network is an ONNX graph: it needs onnx and onnxruntime "
                                       "(pip install onnx onnxruntime)")
            self._wrapped = wrap_image_graph(self.graph.cpu().numpy().tobytes(), self.scale)
        return self._wrapped

    def forward(self, content, style=None):
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(self.onnx_graph(), options, providers=["CPUExecutionProvider"])
        x = content.detach().float().cpu().contiguous().numpy()
        try:
            y = self._session.run(None, {self._session.get_inputs()[0].name: x})[0]
        except Exception as exc:   # ONNX Runtime's own error types: a graph that cannot run at this size
            raise BrushstreamError(f"the imported ONNX graph does not run on a {'x'.join(map(str, x.shape))} input "
                                   f"({' '.join(str(exc).split())[:160]})") from None
        return torch.from_numpy(y).to(content.device, content.dtype)
