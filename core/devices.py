"""Which torch device a ``--device`` value means, for every command (stylize, video, train)."""
from __future__ import annotations

import torch

from .errors import BrushstreamError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto: CUDA when this PyTorch build has a device, else the CPU; cuda: the process's own GPU under torchrun
    (``local_rank``), refused in one line where there is none."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise BrushstreamError("--device cuda: no CUDA device is available to this PyTorch build")
        return torch.device("cuda", local_rank)
    try:
        return torch.device(name)
    except RuntimeError:
        raise BrushstreamError(f"--device {name!r}: not a device (auto, cpu or cuda)") from None
