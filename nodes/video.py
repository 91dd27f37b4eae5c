"""The logic behind Stylize Frames and Stylize Video (no ComfyUI imports): frames in order through one stream state
(core/temporal.py: the method's own temporal mechanism, or the flow-guided blend for image methods).

A state lives for one batch, or, given a stream id, across executions: a long clip cut into batches (or a live
source queued frame batch by frame batch) then stays coherent at the cuts. States are kept per stream id for
the model that made them, a few at a time (least recently used dropped first).
"""
from __future__ import annotations

from collections import OrderedDict

import torch

from ..core.errors import BrushstreamError
from ..core.methods import StyleCode
from ..core.temporal import StreamState
from . import host
from .convert import to_comfy, to_core
from .stylize import LoadedModel

MAX_STREAMS = 8
PREVIEW_EVERY = 10      # frames between progress previews
_streams: OrderedDict[str, tuple[torch.nn.Module, StreamState]] = OrderedDict()   # the module: who made it


def stream_state(model: LoadedModel, stream_id: str, temporal_strength: float | None, reset: bool) -> StreamState:
    """A fresh state, or the one ``stream_id`` carried from earlier executions (same model, same settings)."""
    stream_id = (stream_id or "").strip()
    if not stream_id:
        return model.module.new_state(temporal_strength=temporal_strength)
    known = _streams.get(stream_id)
    if known is not None and not reset and known[0] is model.module and \
            (temporal_strength is None or known[1].strength == temporal_strength):
        _streams.move_to_end(stream_id)
        return known[1]
    state = model.module.new_state(temporal_strength=temporal_strength)
    _streams[stream_id] = (model.module, state)
    _streams.move_to_end(stream_id)
    while len(_streams) > MAX_STREAMS:
        _streams.popitem(last=False)
    return state


def forget_stream(stream_id: str) -> None:
    _streams.pop(stream_id, None)


def stylize_frames(model: LoadedModel, code: StyleCode, frames: torch.Tensor, *, stream_id: str = "",
                   temporal_strength: float | None = None, reset: bool = False, **settings) -> torch.Tensor:
    """IMAGE batch of consecutive frames in, the same out, one frame at a time through the stream state, with
    progress (a preview every few frames) and an interrupt check per frame. ``temporal_strength`` None: the
    method's own default (0 for video-native methods, whose mechanism is built in)."""
    if model.optimises:
        raise BrushstreamError(f"{model.method} optimises every image; use a feed-forward method for video")
    module = model.module
    clip = to_core(frames)
    state = stream_state(model, stream_id, temporal_strength, reset)   # StreamState checks the strength
    progress = host.Progress(clip.shape[0])
    out = []
    with host.on_device(module, clip) as device:
        for t in range(clip.shape[0]):
            host.check_interrupt()
            y = module.stylize(clip[t:t + 1].to(device), code, state=state, **settings)
            out.append(y.cpu())
            progress.update(t + 1, y if (t + 1) % PREVIEW_EVERY == 0 or t + 1 == clip.shape[0] else None)
    return to_comfy(torch.cat(out))
