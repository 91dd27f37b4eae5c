"""Running a small feed-forward network as fast as the device allows (the real-time methods' inference path).

Backends: ``eager`` (PyTorch; channels_last on CUDA) and ``onnx`` (the network exported once with dynamic
height and width, run by ONNX Runtime on the CPU). ``auto`` runs the backends in turn on the first frames of each
new size (every call's output is used, so a single still costs one run, not a timing contest), times the
second run of each and keeps the faster one from then on: on this project's 2-core CPU ONNX Runtime wins clearly, and
more so when other processes
share the cores (PyTorch's OpenMP threads wait on each other), but which one wins depends on the CPU, so it is
measured rather than assumed. Outputs agree to about 1e-6 (tested). ``threads`` sets both backends' threads.
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
        buffer = io.BytesIO()
        example = torch.rand(1, 3, 64, 64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the exporter's notes on instance norm and tracing
            torch.onnx.export(copy.deepcopy(self.net).cpu().float().eval(), (example,), buffer, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}},
                              opset_version=17, dynamo=False)
        return buffer.getvalue()

    def _onnx(self, x: torch.Tensor) -> torch.Tensor:
        out = self._onnx_session().run(None, {"x": x.detach().float().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.dtype)

    # -- choice -------------------------------------------------------------------------------------
    def _usable(self, x: torch.Tensor) -> list[str]:
        if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_autocast_enabled("cpu") \
                or not onnx_available():
            return ["eager"]
        return ["eager", "onnx"]

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
