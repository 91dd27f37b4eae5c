"""Declared method options -> ComfyUI V3 inputs, so every node's widgets come from core's one declaration."""
from __future__ import annotations

import math

from comfy_api.latest import io

from ...core.methods import Option
from ..stylize import weight_choices

INT_LIMIT = 0xFFFFFFFFFFFFFFFF   # ComfyUI's own bound for INT widgets (seeds)

# Custom socket types: a built method, and a style encoded for it.
StyleModel = io.Custom("BRUSHSTREAM_MODEL")
StyleCodeType = io.Custom("BRUSHSTREAM_STYLE")


def _float_step(default: float, top: float) -> float:
    """A widget step fine enough to show the default (a learning rate of 0.02 must not display as 0.0)."""
    step = 0.01 if top <= 1 else 0.1
    if 0 < abs(default) < 1:
        step = min(step, 10.0 ** (math.floor(math.log10(abs(default))) - 1))
    return step


def option_input(opt: Option, method: str | None = None, optional: bool = False):
    """One declared option as a V3 input (widget type, default, range, tooltip)."""
    tip = opt.describe()
    if method is not None and opt.weights:
        return io.Combo.Input(opt.name, options=weight_choices(method, opt.name), default=str(opt.default),
                              tooltip=tip + "; files in models/nst_models are listed too", optional=optional)
    if opt.kind == "int":
        top = int(min(opt.maximum, INT_LIMIT)) if opt.maximum is not None else INT_LIMIT
        return io.Int.Input(opt.name, default=int(opt.default), min=int(opt.minimum or 0), max=top,
                            step=2 if opt.odd else 1, tooltip=tip, optional=optional)
    if opt.kind == "float":
        top = opt.maximum if opt.maximum is not None else 1e9
        bottom = opt.minimum if opt.minimum is not None else -1e9
        return io.Float.Input(opt.name, default=float(opt.default), min=bottom, max=top,
                              step=_float_step(float(opt.default), top), tooltip=tip, optional=optional)
    if opt.kind == "bool":
        return io.Boolean.Input(opt.name, default=bool(opt.default), tooltip=tip, optional=optional)
    if opt.kind == "choice":
        return io.Combo.Input(opt.name, options=list(opt.choices), default=opt.default, tooltip=tip,
                              optional=optional)
    if opt.kind == "text":
        return io.String.Input(opt.name, default=str(opt.default), tooltip=tip, optional=optional)
    # floats / names: typed as "a,b" and parsed by the option itself
    return io.String.Input(opt.name, default=",".join(map(str, opt.default)), tooltip=tip, optional=optional)
