"""Optical flow behind one small interface: ``get_flow(name, **options)(a, b)`` -> flow from a to b.

Backends register by name (OpenCV DIS and Farneback, and FlowNet trained here: flownet_backend.py), so the temporal state, the
warping-error metric and the hosts choose a backend by name and never import one directly.
"""
from __future__ import annotations

from typing import Callable, Protocol

import torch

from ..errors import BrushstreamError


class FlowBackend(Protocol):
    name: str

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) frames in [0, 1] -> (1, 2, H, W) float32 flow in pixels: a's pixel x sits at x + flow(x) in b."""


_BACKENDS: dict[str, Callable[..., FlowBackend]] = {}


def register_flow(name: str):
    def add(factory):
        _BACKENDS[name] = factory
        return factory
    return add


def flow_backends() -> list[str]:
    return sorted(_BACKENDS)


def get_flow(name: str = "dis", **options) -> FlowBackend:
    """A new backend instance (backends keep per-instance scratch state, so each stream gets its own)."""
    if name not in _BACKENDS:
        raise BrushstreamError(f"unknown flow backend {name!r}; choose from {', '.join(flow_backends())}")
    return _BACKENDS[name](**options)


from . import dis, farneback, flownet_backend  # noqa: E402,F401  (registration)
