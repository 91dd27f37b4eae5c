"""The live stylizer: every style of the session loaded and warmed before it is needed, switched between frames.

A style is a :class:`StyleSlot`: the method instance, the encoded style and the stream state that carries the
temporal history. Methods with one network per style (ReCoNet, Johnson) give each slot its own (small) network;
arbitrary-style methods (LST, AdaIN's fast pair, MetaNet) share one model and their slots differ by the style code. A
switch only swaps which slot the next frame uses: the slot was
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
from ..core.io.image import from_uint8, to_uint8
from ..core.methods import StyleCode, StyleMethod
from ..core.temporal import StreamState

log = logging.getLogger("brushstream.obs")
WARM_ROUNDS = 4   # core/runtime.py's auto choice: a warm-up and a timed call for each of eager and ONNX


def live_methods() -> list[str]:
    """Every registered method that declares it can stream (Capabilities.realtime), in registry order."""
    from ..core.methods import available

    return [name for name, cls in available().items() if cls.capabilities.realtime]


@dataclass
class StyleSlot:
    label: str
    model: StyleMethod
    code: StyleCode
    state: StreamState        # every slot carries its own stream's history


def one_network_per_style(method: str) -> bool:
    """Johnson and ReCoNet: a style is a trained network (its own slot); the others share one model, including
    trained multi-style networks (their styles can be blended, so they live in one network)."""
    from ..core.methods import get

    caps = get(method).capabilities
    return caps.trained_styles and not caps.arbitrary_style and not caps.style_blend


def style_networks(method: str, styles: list[str], model: str | None) -> list[tuple[str, str]]:
    """(label, network) for a one-network-per-style method: a style is a manifest name, a style its manifest
    entries paint (``styles``; the live one first) or a .safetensors file; nothing given means the bundled networks
    the manifest marks ``live``."""
    from ..core.hub.weights import load_manifest

    manifest = {n: e for n, e in load_manifest().items() if method in e.method.split(",") and e.role == "model"}
    chosen = ([model] if model else []) + list(styles)
    if not chosen:
        chosen = sorted(n for n, e in manifest.items() if e.live and e.bundled)
    out: list[tuple[str, str]] = []
    for style in chosen:
        if style in manifest:
            name, label = style, (manifest[style].styles or (style,))[0]
        elif Path(style).suffix == ".safetensors" or style.startswith("hf://"):
            name, label = style, Path(style).stem
        else:
            painters = sorted((not e.live, n) for n, e in manifest.items() if style in e.styles)
            if not painters:
                known = ", ".join(sorted({s for e in manifest.values() for s in e.styles}))
                raise BrushstreamError(f"{style}: no {method} network paints this style (trained ones: {known}; or "
                                       f"a .safetensors file from brushstream train {method})")
            name, label = painters[0][1], style
        if label in (lb for lb, _ in out):
            label = Path(name).stem
        out.append((label, name))
    return out


class LiveStylizer:
    """Stylizes one stream with the current slot; ``select``/``step`` switch, ``add_style`` preloads a new one.

    Any method that declares it can stream works; its ``live_options`` apply unless ``options`` says otherwise."""

    def __init__(self, method: str, styles: list[str] | None = None, *, model: str | None = None,
                 options: dict | None = None, strength: float = 1.0, temporal_strength: float | None = None):
        from ..core.api import SAMPLE_STYLE, load, style_for
        from ..core.methods import get

        live = live_methods()
        if method not in live:
            raise BrushstreamError(f"the live filter streams {', '.join(live)} (methods that can stream), "
                                   f"not {method!r}")
        self.method, self.temporal_strength = method, temporal_strength
        self.options = {**get(method).live_options, **dict(options or {})}
        model = self.options.pop("model", None) or model
        self._load, self._style_for = load, style_for
        self._lock = threading.Lock()
        self._wanted: int | None = None
        self.slots: list[StyleSlot] = []
        self.index = 0
        self.strength = float(strength)
        self.switches = 0
        self._last_frame: np.ndarray | None = None   # the newest frame seen: styles added later warm up on it
        self._per_style = one_network_per_style(method)
        if self._per_style:
            for label, name in style_networks(method, list(styles or []), model):
                self.slots.append(self._network_slot(label, name))
        else:
            self._shared = load(method, **({"model": model} if model else {}), **self.options)
            self._shared_state = None
            # A network of trained styles offers all of them; an arbitrary-style method starts on the sample.
            for style in styles or list(self._shared.capabilities.fixed_styles) or [str(SAMPLE_STYLE)]:
                self.slots.append(self._shared_slot(style))

    # -- building slots -------------------------------------------------------------------------------
    def _state(self, model: StyleMethod) -> StreamState:
        return model.new_state(temporal_strength=self.temporal_strength)

    def _network_slot(self, label: str, name: str) -> StyleSlot:
        model = self._load(self.method, model=name, **self.options).eval()
        return StyleSlot(label, model, model.encode_style(0), self._state(model))

    def _shared_slot(self, style: str) -> StyleSlot:
        model = self._shared
        if not Path(style).is_file() and not model.capabilities.fixed_styles:
            raise BrushstreamError(f"{style}: no such style image ({self.method} takes any style image file)")
        code = model.encode_style(self._style_for(model, [style]))
        if model.capabilities.video_native:
            # Its memory belongs to the stream, not the style: one state for every slot, so a switch keeps it.
            if self._shared_state is None:
                self._shared_state = self._state(model)
            return StyleSlot(Path(style).stem, model, code, self._shared_state)
        return StyleSlot(Path(style).stem, model, code, self._state(model))

    def _new_slot(self, style: str) -> StyleSlot:
        if self._per_style:
            (label, name), = style_networks(self.method, [style], None)
            return self._network_slot(label, name)
        return self._shared_slot(style)

    # -- warming and switching --------------------------------------------------------------------------
    @torch.inference_mode()
    def warm(self, frame: np.ndarray, slots: list[StyleSlot] | None = None) -> None:
        """Run each slot on a real frame WARM_ROUNDS times (the auto runtime's warm-up and timed call of each
        backend, the ONNX session, folded norms), then forget the frames so the stream starts clean."""
        x = from_uint8(frame)
        for slot in slots if slots is not None else self.slots:
            for _ in range(WARM_ROUNDS):
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
