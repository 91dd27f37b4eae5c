"""Stylize whole clips: reader -> method with a stream state -> writer, one frame at a time.

``stylize_frames`` is the frame iterator hosts use (ComfyUI frame batches, the OBS filter);
``stylize_video`` is ``brushstream video``: it checks every input and the output before loading
anything, encodes the style once per clip, keeps the source timestamps and audio, and leaves either
the complete output or nothing at the output path.
"""
from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch
from tqdm import tqdm

from .errors import BrushstreamError
from .io.video import AudioSource, VideoFrame, VideoReader, VideoWriter, check_video_output, output_size, probe_video
from .methods import DEFAULT_METHOD, StyleCode, StyleMethod
from .temporal import StreamState

MIN_VIDEO_SIZE, MAX_VIDEO_SIZE = 16, 8192   # output height, px


@dataclass
class VideoResult:
    output: Path
    frames: int
    seconds: float                 # processing only: decoding, stylizing, encoding (not start-up or loading)
    size: tuple[int, int]          # (W, H) written
    scene_cuts: list[int] = field(default_factory=list)   # frame numbers (from 0) where the history was reset
    warping: dict | None = None    # with measure=: core.metrics.WarpingError.summary() of input and output

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def stylize_frames(model: StyleMethod, code: StyleCode, frames: Iterable[torch.Tensor | VideoFrame], *,
                   state: StreamState | None = None, strength: float = 1.0, preserve_color: bool = False,
                   precision: str = "fp32") -> Iterator[torch.Tensor]:
    """Yield each stylized frame (1, 3, H, W) as soon as it is done; ``state=None`` stylizes frame by frame."""
    for frame in frames:
        image = frame.image if isinstance(frame, VideoFrame) else frame
        if image.dim() == 3:
            image = image.unsqueeze(0)
        for i in range(image.shape[0]):
            yield model.stylize(image[i:i + 1], code, state=state, strength=strength,
                                preserve_color=preserve_color, precision=precision)


def _new_state(model: StyleMethod, temporal: bool, temporal_strength: float | None, flow: str,
               flow_options: dict | None) -> StreamState | None:
    if not temporal:
        return None
    from .flow import get_flow

    return model.new_state(temporal_strength=temporal_strength, flow=get_flow(flow, **(flow_options or {})))


def stylize_video(input: str | os.PathLike, style, output: str | os.PathLike, *,
                  method: str | StyleMethod = DEFAULT_METHOD, style_weights: Sequence[float] | None = None,
                  temporal: bool = True, temporal_strength: float | None = None, flow: str = "dis",
                  flow_options: dict | None = None, size: int | None = None, start: float = 0.0,
                  max_frames: int | None = None, strength: float = 1.0, preserve_color: bool = False,
                  precision: str = "fp32", style_size: int | None = 512, device: str | torch.device | None = None,
                  measure: str | None = None, progress: bool = False, **options) -> VideoResult:
    """Stylize a clip (file, animated GIF or folder of frames) into ``output`` (.mp4/.mov/.mkv, or a
    ``frames/frame_%05d.png`` pattern). ``size`` is the output height; ``start`` is in seconds.

    With ``temporal`` (the default) every frame goes through one stream state: image methods blend in
    their warped previous output with ``temporal_strength`` (see core/temporal.py), video-native methods
    use their own mechanism. ``options`` are the method's own (``brushstream methods``). ``measure`` names
    a flow backend that grades the result's warping error (Lai et al. 2018) beside the input's own;
    its time is not counted in ``seconds``.
    """
    from .api import load, refuse_overwriting_inputs, style_for

    out = check_video_output(output)
    refuse_overwriting_inputs([out], [input, *(style if isinstance(style, (list, tuple)) else [style])])
    if max_frames is not None and max_frames < 1:
        raise BrushstreamError(f"max_frames (--max-frames) must be at least 1, got {max_frames}")
    if not (math.isfinite(start) and start >= 0):
        raise BrushstreamError(f"start (--start) must be 0 s or later, got {start}")
    if size is not None and not MIN_VIDEO_SIZE <= size <= MAX_VIDEO_SIZE:
        raise BrushstreamError(f"size (--size) is the output height and must be between {MIN_VIDEO_SIZE} and "
                               f"{MAX_VIDEO_SIZE} px, got {size}")
    if temporal_strength is not None and not (math.isfinite(temporal_strength) and 0.0 <= temporal_strength <= 1.0):
        raise BrushstreamError(f"temporal_strength (--temporal-strength) must be between 0 and 1, got {temporal_strength}")
    info = probe_video(input)
    if info.duration is not None and start > 0 and start >= info.duration:
        raise BrushstreamError(f"{info.path}: start {start:g} s is past the end of the clip ({info.duration:.2f} s)")
    width, height = output_size(info.width, info.height, size)
    if isinstance(method, StyleMethod):
        if options:
            raise BrushstreamError(f"options {sorted(options)} are set when a method is built; pass them to load()")
        model = method
    else:
        from .api import budget_of
        from .methods.base import check_pixels
        check_pixels((height, width), budget_of(method), method)   # before any weights are looked up
        model = load(method, **options)
    model.check_budget((height, width))
    if device is not None:
        model = model.to(device)
    code = model.encode_style(style_for(model, style, style_size), style_weights)   # once per clip
    state = _new_state(model, temporal, temporal_strength, flow, flow_options)
    judge = None
    if measure:
        from .flow import get_flow
        from .metrics import WarpingError
        judge = WarpingError(get_flow(measure))

    total = info.frame_count
    if total is not None:
        total = max(total - round(start * float(info.fps)), 0)
        total = min(total, max_frames) if max_frames else total
    frames = 0
    with VideoReader(input, size=(width, height), start=start, max_frames=max_frames) as reader:
        stream = iter(reader)
        first = next(stream, None)
        if first is None:
            raise BrushstreamError(f"{info.path}: no frames at or after {start:g} s")
        audio = AudioSource(info.path, start=first.time) if info.has_audio else None
        began, judging = time.perf_counter(), 0.0
        with VideoWriter(out, size=(width, height), fps=info.fps, audio=audio, time_offset=first.time) as writer, \
                torch.inference_mode(not model.capabilities.optimisation), \
                tqdm(total=total, disable=not progress, unit="frame", desc="stylize", dynamic_ncols=True) as bar:
            for frame in itertools.chain([first], stream):
                y = model.stylize(frame.image, code, state=state, strength=strength,
                                  preserve_color=preserve_color, precision=precision)
                writer.write(y, frame.time)
                if judge is not None:
                    t = time.perf_counter()
                    judge.update(frame.image, y)
                    judging += time.perf_counter() - t
                frames += 1
                bar.update(1)
        seconds = time.perf_counter() - began - judging
    return VideoResult(out, frames, seconds, (width, height), list(state.cuts) if state else [],
                       judge.summary() if judge else None)
