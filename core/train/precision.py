"""Which number format a training run computes in: ``auto`` picks bfloat16 autocast where the hardware has
bfloat16 arithmetic (x86 AVX512_BF16 or AMX on the CPU; a CUDA device that reports bf16 support) and float32
elsewhere. On a CPU without those instructions bf16 is emulated and slower than fp32, so it is never chosen
there by default, and ``fp32`` is always available. Weights and optimiser state stay float32 either way (only
the forward and backward maths run in bf16), so files trained in either format are the same kind of file.
"""
from __future__ import annotations

import warnings

import torch

from ..errors import BrushstreamError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_bf16() -> bool:
    """True when this CPU has native bfloat16 instructions (AVX512_BF16 or AMX tiles)."""
    probe = getattr(torch, "cpu", None)
    checks = [getattr(probe, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(bool(check()) for check in checks if check is not None)
    except RuntimeError:   # a build without the cpuinfo probes: assume none
        return False


def cuda_has_bf16(device: torch.device) -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` or ``fp32`` for ``device``; an explicit choice is checked and kept."""
    if precision not in PRECISIONS:
        raise BrushstreamError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise BrushstreamError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        # Asked for by name, so it is kept, but emulated bf16 convolutions ran ~100x slower than fp32 on such a CPU.
        warnings.warn("--precision bf16: this CPU has no bfloat16 instructions, so bf16 is emulated and far slower "
                      "than fp32 (--precision auto picks fp32 here)", RuntimeWarning, stacklevel=2)
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16(device) else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
