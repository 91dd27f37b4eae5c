"""Middlebury ``.flo`` optical-flow files (Baker et al., IJCV 2011, the format Sintel and FlowNet use).

Layout: float32 magic 202021.25, int32 width, int32 height, then width x height (u, v) float32 pairs row by row,
all little-endian. Reads check every field and name the file in one line; writes are atomic.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import BrushstreamError, reason
from ..io.atomic import atomic_path

MAGIC = 202021.25
HEADER_BYTES = 12
MAX_SIDE = 1 << 15   # a sanity bound on width/height so a corrupt header cannot ask for terabytes


def read_flo(path: str | os.PathLike) -> torch.Tensor:
    """A .flo file -> (2, H, W) float32 tensor (channel 0 = u, 1 = v), in pixels."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BrushstreamError(f"{path}: cannot read the flow file ({reason(exc)})") from None
    if len(data) < HEADER_BYTES:
        raise BrushstreamError(f"{path}: not a .flo file ({len(data)} bytes, shorter than its 12-byte header)")
    magic = np.frombuffer(data, "<f4", 1)[0]
    if magic != np.float32(MAGIC):
        raise BrushstreamError(f"{path}: not a .flo file (wrong magic number {magic!r}, expected {MAGIC})")
    width, height = (int(v) for v in np.frombuffer(data, "<i4", 2, 4))
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise BrushstreamError(f"{path}: corrupt .flo header (size {width}x{height})")
    expected = HEADER_BYTES + width * height * 8
    if len(data) != expected:
        raise BrushstreamError(f"{path}: truncated or padded .flo file ({len(data)} bytes, {width}x{height} "
                               f"flow needs {expected})")
    flow = np.frombuffer(data, "<f4", width * height * 2, HEADER_BYTES).reshape(height, width, 2)
    return torch.from_numpy(flow.astype(np.float32)).permute(2, 0, 1).contiguous()


def write_flo(flow: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write (2, H, W) or (1, 2, H, W) flow in pixels as a .flo file (temp file, then rename)."""
    path = Path(path)
    if flow.dim() == 4 and flow.shape[0] == 1:
        flow = flow[0]
    if flow.dim() != 3 or flow.shape[0] != 2:
        raise BrushstreamError(f"{path}: flow to write must be (2, H, W), got {tuple(flow.shape)}")
    _, height, width = flow.shape
    body = flow.detach().to("cpu", torch.float32).permute(1, 2, 0).contiguous().numpy().astype("<f4")
    header = np.array([MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(body.tobytes())
    return path
