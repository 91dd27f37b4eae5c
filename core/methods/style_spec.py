"""What style to apply, in one form every method accepts.

Arbitrary methods take style images; methods trained on a fixed set take a style index or name; either
kind may take several with blend weights (a multi-style network blends its learned styles). Hosts read a
method's ``capabilities`` (``arbitrary_style``, ``fixed_styles``, ``style_blend``) to offer the right UI
and build a spec; ``StyleSpec.coerce`` also accepts the short forms the Python API allows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

import torch

from ..errors import BrushstreamError

StyleRef = Union[int, str]


def normalise_weights(weights: Sequence[float] | None, count: int) -> tuple[float, ...]:
    """Blend weights summing to 1; NaN, infinite, negative or all-zero weights are refused."""
    if count < 1:
        raise BrushstreamError("at least one style is needed")
    if weights is None:
        return tuple([1.0 / count] * count)
    if len(weights) != count:
        raise BrushstreamError(f"{len(weights)} style weights given for {count} styles")
    try:
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        raise BrushstreamError(f"style weights must be numbers, got {list(weights)!r}") from None
    if not all(math.isfinite(x) for x in w):
        raise BrushstreamError(f"style weights must be finite numbers, got {w}")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise BrushstreamError(f"style weights must be non-negative and not all zero, got {w}")
    total = sum(w)
    return tuple(x / total for x in w)


def parse_style_weights(text: str | None, count: int | None = None) -> list[float] | None:
    """'0.7, 0.3' (commas and/or spaces) -> [0.7, 0.3], for every host; empty -> None (equal weights). With
    ``count`` the number must match; finiteness and signs are checked when the weights are used (normalised)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        weights = [float(w) for w in text.replace(",", " ").split()]
    except ValueError:
        raise BrushstreamError(f"style weights must be numbers separated by commas, got {text!r}") from None
    if count is not None and len(weights) != count:
        raise BrushstreamError(f"{len(weights)} style weights for {count} styles; give one per style image")
    return weights


@dataclass(frozen=True)
class StyleSpec:
    """Style images, or references (index or name) to a method's fixed styles, with blend weights."""
    images: tuple[torch.Tensor, ...] = ()
    refs: tuple[StyleRef, ...] = ()
    weights: tuple[float, ...] | None = None   # None: equal weights

    def __post_init__(self):
        if bool(self.images) == bool(self.refs):
            raise BrushstreamError("a style is either style images or style indices/names, and at least one")

    @property
    def count(self) -> int:
        return len(self.images) or len(self.refs)

    def normalised_weights(self) -> tuple[float, ...]:
        return normalise_weights(self.weights, self.count)

    @classmethod
    def from_images(cls, images: torch.Tensor | Sequence[torch.Tensor],
                    weights: Sequence[float] | None = None) -> "StyleSpec":
        """One (B, 3, H, W) batch (each image a style) or a list of (1|3, ...) tensors."""
        if isinstance(images, torch.Tensor):
            images = [images[i:i + 1] for i in range(images.shape[0])] if images.dim() == 4 else [images]
        return cls(images=tuple(images), weights=None if weights is None else tuple(weights))

    @classmethod
    def from_refs(cls, refs: StyleRef | Sequence[StyleRef] | Mapping[StyleRef, float],
                  weights: Sequence[float] | None = None) -> "StyleSpec":
        """An index or name, a list of them, or a ``{index_or_name: weight}`` blend."""
        if isinstance(refs, Mapping):
            if weights is not None:
                raise BrushstreamError("give blend weights either in the mapping or as weights, not both")
            return cls(refs=tuple(refs), weights=tuple(refs.values()))
        if isinstance(refs, (int, str)):
            refs = [refs]
        return cls(refs=tuple(refs), weights=None if weights is None else tuple(weights))

    @classmethod
    def coerce(cls, style: Any, weights: Sequence[float] | None = None) -> "StyleSpec":
        """Whatever the Python API was given as a style -> a StyleSpec."""
        if isinstance(style, StyleSpec):
            if weights is not None:
                raise BrushstreamError("a StyleSpec carries its own weights")
            return style
        if isinstance(style, torch.Tensor):
            return cls.from_images(style, weights)
        if isinstance(style, (int, str, Mapping)) and not isinstance(style, bool):
            return cls.from_refs(style, weights)
        if isinstance(style, Sequence) and style and all(isinstance(s, torch.Tensor) for s in style):
            return cls.from_images(list(style), weights)
        if isinstance(style, Sequence) and style and all(isinstance(s, (int, str)) and not isinstance(s, bool)
                                                          for s in style):
            return cls.from_refs(list(style), weights)
        raise BrushstreamError(
            "a style is image tensors, a style index or name, a list of them, or a {style: weight} mapping; "
            f"got {type(style).__name__}")


def resolve_refs(refs: Sequence[StyleRef], names: Sequence[str], method: str) -> tuple[int, ...]:
    """Indices into a method's fixed styles; names are matched exactly, indices range-checked."""
    out = []
    for ref in refs:
        if isinstance(ref, str) and ref in names:
            out.append(names.index(ref))
        elif isinstance(ref, int) and 0 <= ref < len(names):
            out.append(ref)
        else:
            raise BrushstreamError(f"{method} has no style {ref!r}; its styles: "
                                   + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    return tuple(out)
