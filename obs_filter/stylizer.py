"""The live stylizer: every style of the session loaded and warmed before it is needed, switched between frames.

A style is a :class:`StyleSlot`: the method instance, the encoded style and the stream state that carries the
temporal history. ReCoNet has one network per style, so each slot holds its own (small) network; LST shares one
model and its slots differ by the style matrix. A switch only swaps which slot the next frame uses: the slot was
warmed on a real frame of the stream's size (runtime picked, ONNX session made, norms folded), so the first frame
in the new style costs what any frame costs. Styles added while streaming are built on a background thread and
join the list when warm.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import BrushstreamError
from ..core.image import from_uint8, to_uint8
from ..core.methods import StyleCode, StyleMethod
from ..core.temporal import StreamState

log = logging.getLogger("brushstream.obs")

LIVE_METHODS = ("reconet", "lst")
RECONET_PREFIX = "reconet_rt_"


@dataclass
class StyleSlot:
    label: str
    model: StyleMethod
    code: StyleCode
    state: StreamState        # every slot carries its own stream's history


def reconet_models(styles: list[str], model: str | None) -> list[tuple[str, str]]:
    """(label, model) for ReCoNet: a style is a manifest name, ``reconet_rt_<style>`` or a .safetensors file;
    nothing given means every bundled real-time network."""
    from ..core.weights import load_manifest

    manifest = {name: e for name, e in load_manifest().items() if e.method == "reconet"}
    chosen = ([model] if model else []) + list(styles)
    if not chosen:
        chosen = sorted(n for n, e in manifest.items() if n.startswith(RECONET_PREFIX) and e.bundled)
    out = []
    for style in chosen:
        if style in manifest or Path(style).suffix == ".safetensors" or style.startswith("hf://"):
            name = style
        elif RECONET_PREFIX + style in manifest:
            name = RECONET_PREFIX + style
        else:
            known = ", ".join(n.removeprefix(RECONET_PREFIX) for n in sorted(manifest) if n.startswith(RECONET_PREFIX))
            raise BrushstreamError(f"{style}: no such ReCoNet style (trained ones: {known}; or a .safetensors file "
                                   f"from brushstream train reconet)")
        out.append((Path(name).stem.removeprefix(RECONET_PREFIX), name))
    return out


class LiveStylizer:
    """Stylizes one stream with the current slot; ``select``/``step`` switch, ``add_style`` preloads a new one."""

    def __init__(self, method: str, styles: list[str] | None = None, *, model: str | None = None,
                 options: dict | None = None, strength: float = 1.0, temporal_strength: float | None = None):
        from ..core.api import SAMPLE_STYLE, load, style_for

        if method not in LIVE_METHODS:
            raise BrushstreamError(f"the live filter streams {' or '.join(LIVE_METHODS)}, not {method!r}")
        self.method, self.options, self.temporal_strength = method, dict(options or {}), temporal_strength
        self._load, self._style_for = load, style_for
        self._lock = threading.Lock()
        self._wanted: int | None = None
        self.slots: list[StyleSlot] = []
        self.index = 0
        self.strength = float(strength)
        self.switches = 0
        self._last_frame: np.ndarray | None = None   # the newest frame seen: styles added later warm up on it
        if method == "reconet":
            for label, name in reconet_models(list(styles or []), model):
                self.slots.append(self._reconet_slot(label, name))
        else:
            self._shared = load("lst", **({"model": model} if model else {}), **self.options)
            for style in styles or [str(SAMPLE_STYLE)]:
                self.slots.append(self._lst_slot(style))

    # -- building slots -------------------------------------------------------------------------------
    def _state(self, model: StyleMethod) -> StreamState:
        return model.new_state(temporal_strength=self.temporal_strength)

    def _reconet_slot(self, label: str, name: str) -> StyleSlot:
        model = self._load("reconet", model=name, **self.options).eval()
        return StyleSlot(label, model, model.encode_style(0), self._state(model))

    def _lst_slot(self, style: str) -> StyleSlot:
        if not Path(style).is_file():
            raise BrushstreamError(f"{style}: no such style image (LST takes any style image file)")
        model = self._shared
        code = model.encode_style(self._style_for(model, [style]))
        return StyleSlot(Path(style).stem, model, code, self._state(model))

    def _new_slot(self, style: str) -> StyleSlot:
        if self.method == "reconet":
            (label, name), = reconet_models([style], None)
            return self._reconet_slot(label, name)
        return self._lst_slot(style)

    # -- warming and switching --------------------------------------------------------------------------
    @torch.inference_mode()
    def warm(self, frame: np.ndarray, slots: list[StyleSlot] | None = None) -> None:
        """Run each slot on a real frame twice (backend timing, ONNX session, folded norms), then forget the
        frames so the stream starts clean."""
        x = from_uint8(frame)
        for slot in slots if slots is not None else self.slots:
            for _ in range(2):
                slot.model.stylize(x, slot.code, state=slot.state, strength=self.strength)
            slot.state.forget_frames()

    def add_style(self, style: str, frame: np.ndarray | None = None, done=None) -> threading.Thread:
        """Build and warm a new style on a background thread (on ``frame``, or the newest frame stylized). When
        ready it joins ``slots`` and ``done(index)`` is called; it is not selected by itself. A style that cannot
        be built is logged in one line."""
        def build():
            try:
                slot = self._new_slot(style)
                frame_now = frame if frame is not None else self._last_frame
                if frame_now is not None:
                    self.warm(frame_now, [slot])
                with self._lock:
                    self.slots.append(slot)
                    index = len(self.slots) - 1
                log.info("style %s ready (%d styles)", slot.label, len(self.slots))
                if done is not None:
                    done(index)
            except BrushstreamError as exc:
                log.error("cannot add style: %s", exc)
        thread = threading.Thread(target=build, name="brushstream-preload", daemon=True)
        thread.start()
        return thread

    def labels(self) -> list[str]:
        with self._lock:
            return [s.label for s in self.slots]

    def find(self, label: str) -> int | None:
        labels = self.labels()
        return labels.index(label) if label in labels else None

    def select(self, index: int) -> None:
        """Switch to slot ``index`` at the next frame (any thread)."""
        with self._lock:
            if not 0 <= index < len(self.slots):
                raise BrushstreamError(f"style {index} does not exist ({len(self.slots)} styles)")
            self._wanted = index

    def step(self, delta: int) -> None:
        """Next (+1) or previous (-1) style, wrapping around."""
        with self._lock:
            current = self._wanted if self._wanted is not None else self.index
            self._wanted = (current + delta) % len(self.slots)

    def wanted_label(self) -> str:
        """The style the next frame will use."""
        with self._lock:
            return self.slots[self._wanted if self._wanted is not None else self.index].label

    def set_strength(self, value: float) -> None:
        self.strength = float(min(max(value, 0.0), 1.0))

    @property
    def current(self) -> StyleSlot:
        return self.slots[self.index]

    @torch.inference_mode()
    def __call__(self, frame: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._wanted is not None and self._wanted != self.index:
                self.index = self._wanted
                self.switches += 1
                # The slot's history is from before it was left: blending it into this frame would be wrong.
                self.slots[self.index].state.forget_frames()
            self._wanted = None
            slot = self.slots[self.index]
        self._last_frame = frame
        return to_uint8(slot.model.stylize(from_uint8(frame), slot.code, state=slot.state, strength=self.strength))
