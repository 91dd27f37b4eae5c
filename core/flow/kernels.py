"""Builds the fused correlation kernels (csrc/) with torch.utils.cpp_extension on first use, once per process.

``kernel_for(a, b)`` gives the compiled module for a pair of maps, or None where the PyTorch reference must serve
(a dtype other than float32/float64, another device, a build that failed). Builds land in
``~/.cache/brushstream/torch_extensions/<name>`` (``$BRUSHSTREAM_KERNEL_DIR/<name>`` if that is set); the name
carries a hash of the sources, the flags and the torch version, so an edited source or a new torch rebuilds.

``BRUSHSTREAM_CORRELATION`` picks the path: ``auto`` (default: the kernel, or the reference with one warning if it
cannot be built), ``reference`` (never build), ``cpp`` (the compiled kernel is required: a failed build is an error).
The CUDA kernel is built only for CUDA tensors, where torch.cuda.is_available() and a CUDA toolkit (CUDA_HOME) exist.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from pathlib import Path

import torch

from ..errors import BrushstreamError

CSRC = Path(__file__).resolve().with_name("csrc")
ENV_CHOICE = "BRUSHSTREAM_CORRELATION"
ENV_DIR = "BRUSHSTREAM_KERNEL_DIR"
CHOICES = ("auto", "reference", "cpp")
KERNEL_DTYPES = (torch.float32, torch.float64)

_SOURCES = {"cpu": ["correlation.cpp"], "cuda": ["correlation.cpp", "correlation_cuda.cu"]}
_HEADERS = ["correlation_geometry.h", "correlation_loops.h"]

_lock = threading.Lock()
_built: dict[str, object] = {}   # "cpu" / "cuda" -> the module, or the exception its build raised


def choice() -> str:
    value = os.environ.get(ENV_CHOICE, "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise BrushstreamError(f"{ENV_CHOICE}={value!r} is not one of {', '.join(CHOICES)}")
    return value


def _flags(kind: str) -> dict[str, list[str]]:
    """-O3 and OpenMP only, nothing tied to the build machine's CPU (the AVX2 loops are picked at run time)."""
    if os.name == "nt":
        cflags, ldflags = ["/O2", "/openmp"], []
    elif sys.platform == "darwin":   # Apple clang has no OpenMP runtime: the loops then run on one thread
        cflags, ldflags = ["-O3"], []
    else:
        cflags, ldflags = ["-O3", "-fopenmp"], ["-fopenmp"]
    flags = {"extra_cflags": cflags, "extra_ldflags": ldflags}
    if kind == "cuda":
        flags["extra_cflags"] = cflags + ["-DBRUSHSTREAM_CORRELATION_CUDA"]
        flags["extra_cuda_cflags"] = ["-O3"]
    return flags


def extension_name(kind: str) -> str:
    digest = hashlib.sha256()
    for name in _SOURCES[kind] + _HEADERS:
        digest.update(name.encode() + b"\0" + (CSRC / name).read_bytes())
    digest.update(repr((_flags(kind), torch.__version__, sys.version_info[:2])).encode())
    return f"brushstream_correlation_{kind}_{digest.hexdigest()[:12]}"


def build_directory(name: str) -> Path:
    root = os.environ.get(ENV_DIR) or Path.home() / ".cache" / "brushstream" / "torch_extensions"
    return Path(root) / name


def _build(kind: str):
    """Compile (or reuse the cached build) and import one variant; raises whatever went wrong."""
    from torch.utils import cpp_extension
    if kind == "cuda" and cpp_extension.CUDA_HOME is None:
        raise RuntimeError("no CUDA toolkit found (CUDA_HOME)")
    name = extension_name(kind)
    folder = build_directory(name)
    folder.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(name=name, sources=[str(CSRC / s) for s in _SOURCES[kind]],
                              extra_include_paths=[str(CSRC)], build_directory=str(folder), verbose=False,
                              **_flags(kind))


def _short_reason(exc: BaseException) -> str:
    """One line: the compiler's first "error:" line if there is one, else the exception's last line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line.lower()]
    line = errors[0] if errors else lines[-1] if lines else "no message"
    return f"{type(exc).__name__}: {line if len(line) <= 300 else '...' + line[-297:]}"


def load(kind: str = "cpu"):
    """The compiled module for ``kind`` ("cpu" or "cuda"), built at most once per process; None after a failed
    build (one warning, the first time), or an error after a failed build when BRUSHSTREAM_CORRELATION=cpp."""
    required = choice() == "cpp"
    with _lock:
        if kind not in _built:
            try:
                _built[kind] = _build(kind)
            except Exception as exc:  # noqa: BLE001  (no compiler, no ninja, a compile error: all fall back)
                _built[kind] = exc
                if not required:
                    warnings.warn(f"brushstream: the {kind} correlation kernel could not be built "
                                  f"({_short_reason(exc)}); using the PyTorch reference", RuntimeWarning, stacklevel=3)
        result = _built[kind]
    if isinstance(result, BaseException):
        if required:
            raise BrushstreamError(f"{ENV_CHOICE}=cpp but the {kind} correlation kernel could not be built: "
                                   f"{_short_reason(result)}") from result
        return None
    return result


def _device_kind(device: torch.device) -> str | None:
    if device.type == "cpu":
        return "cpu"
    if device.type == "cuda" and torch.cuda.is_available():
        return "cuda"
    return None


def kernel_for(a: torch.Tensor, b: torch.Tensor):
    """The compiled module that computes correlation(a, b), or None for the reference."""
    mode = choice()
    if mode == "reference" or a.dtype != b.dtype or a.dtype not in KERNEL_DTYPES or a.device != b.device:
        return None
    kind = _device_kind(a.device)
    if kind is None:
        if mode == "cpp":
            raise BrushstreamError(f"{ENV_CHOICE}=cpp but no correlation kernel exists for {a.device} tensors")
        return None
    return load(kind)


def correlation_backend(device: str | torch.device = "cpu") -> str:
    """Which path ``correlation`` takes for float32 maps on ``device``: "cpp", "cuda" or "reference" (builds the
    kernel if it is not built yet)."""
    if choice() == "reference":
        return "reference"
    kind = _device_kind(torch.device(device))
    if kind is None or load(kind) is None:
        return "reference"
    return "cpp" if kind == "cpu" else "cuda"
