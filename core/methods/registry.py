"""Method names -> classes; builders load their weights through core.weights (timm's registry idea)."""
from __future__ import annotations

from ..errors import BrushstreamError
from .base import StyleMethod

_REGISTRY: dict[str, type[StyleMethod]] = {}


def register(cls: type[StyleMethod]) -> type[StyleMethod]:
    _REGISTRY[cls.name] = cls
    return cls


def _ensure_loaded() -> None:
    # Importing the method modules runs their @register decorators.
    from . import adain, gatys, style_swap, wct  # noqa: F401


def available() -> dict[str, type[StyleMethod]]:
    _ensure_loaded()
    return dict(sorted(_REGISTRY.items()))


def build(name: str, **options) -> StyleMethod:
    """Build a ready-to-use method by name; options go to its constructor (weights, levels, ...)."""
    methods = available()
    if name not in methods:
        raise BrushstreamError(f"unknown method {name!r}; available: {', '.join(methods)}")
    return methods[name](**options).eval()

