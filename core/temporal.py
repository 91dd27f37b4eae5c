"""The state one stream (a video, a camera) carries from frame to frame.

A method makes one with ``method.new_state(...)`` and the host passes it to every ``stylize(..., state=)``
call of that stream, frames in order. The state keeps the previous input and output frames, the flow
from the current frame back to the previous one with its reliability (occlusion) mask, and the frame
index; it forgets the history on scene cuts (detected from the input frames) and size changes.

Image methods gain temporal stability from it (Ruder et al. 2016's idea, applied to a feed-forward
output): the previous output is warped to the current frame by the input frames' flow and blended in
where the flow is reliable, ``out = y + strength * mask * (warp(prev_out) - y)``. The blend is on
output pixels: bench/video_temporal.py measured it against blending encoder features (see README).
Video-native methods use ``motion()`` and ``data`` for their own mechanism instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .errors import BrushstreamError
from .ops.warp import backward_warp, reliable_flow_mask

DEFAULT_TEMPORAL_STRENGTH = 0.8
# Scene cut: the mean absolute difference of small grayscale thumbnails (0..1). Continuous shots in
# ../shared/data/video stay below 0.08 (fast pans included); cuts between different shots measure 0.15+.
DEFAULT_CUT_THRESHOLD = 0.12
_THUMB = (36, 64)


def _thumbnail(frame: torch.Tensor) -> torch.Tensor:
    gray = frame.float().mean(dim=1, keepdim=True)
    return F.adaptive_avg_pool2d(gray, _THUMB)


@dataclass
class Motion:
    """How the current frame relates to the previous one (both (1, ., H, W), on the frame's device)."""
    flow: torch.Tensor      # current -> previous, in pixels: backward_warp(prev, flow) aligns prev to now
    reliable: torch.Tensor  # 1 where that flow passes the consistency and motion-boundary checks


@dataclass
class StreamState:
    method: str                                   # the method that made it (a state is not portable)
    strength: float = 0.0                         # flow-guided blend of the previous output (image methods)
    flow: Any = None                              # a core.flow backend; made on first use when None
    cut_threshold: float = DEFAULT_CUT_THRESHOLD  # <= 0 disables scene-cut detection
    frame_index: int = 0                          # frames stylized so far in this stream
    size: tuple[int, int] | None = None           # (H, W) of the last frame
    data: dict[str, Any] = field(default_factory=dict)   # a video-native method's own memory
    resets: int = 0                               # how many times the history was dropped
    cuts: list[int] = field(default_factory=list)  # frame indices where a scene cut reset the history
    prev_input: torch.Tensor | None = None
    prev_output: torch.Tensor | None = None
    _frame: torch.Tensor | None = field(default=None, repr=False)
    _motion: Motion | None = field(default=None, repr=False)

    def __post_init__(self):
        if not 0.0 <= float(self.strength) <= 1.0:
            raise BrushstreamError(f"temporal strength must be between 0 and 1, got {self.strength}")
        self.strength = float(self.strength)

    def reset(self) -> None:
        """Forget the history (scene cut, size change, seek); the frame index keeps counting."""
        self.data.clear()
        self.size = None
        self.prev_input = self.prev_output = None
        self._motion = None
        self.resets += 1

    def forget_frames(self) -> None:
        """Drop the previous frames but keep the method's own memory (``data``): a stream that resumes after a
        pause or a style switch must not blend in stale output, yet need not redo calibrations it still holds."""
        self.prev_input = self.prev_output = None
        self._motion = None

    def is_scene_cut(self, frame: torch.Tensor) -> bool:
        if self.cut_threshold <= 0 or self.prev_input is None:
            return False
        diff = (_thumbnail(frame) - _thumbnail(self.prev_input)).abs().mean()
        return float(diff) > self.cut_threshold

    def begin_frame(self, frame: torch.Tensor) -> None:
        """Called by the method before each frame (1, 3, H, W): a new size or a new shot drops the history."""
        size = (int(frame.shape[-2]), int(frame.shape[-1]))
        if self.size is not None and self.size != size:
            self.reset()
        elif self.is_scene_cut(frame):
            self.reset()
            self.cuts.append(self.frame_index)
        self.size = size
        self._frame, self._motion = frame, None

    def motion(self) -> Motion | None:
        """Flow from the current frame back to the previous one and its mask; None on a stream's first frame."""
        if self.prev_input is None or self._frame is None:
            return None
        if self._motion is None:
            if self.flow is None:
                from .flow import get_flow
                self.flow = get_flow("dis")
            now, before = self._frame, self.prev_input
            backward, forward = self.flow(now, before), self.flow(before, now)
            self._motion = Motion(backward, reliable_flow_mask(backward, forward))
        return self._motion

    def stabilise(self, output: torch.Tensor) -> torch.Tensor:
        """Blend the previous output, warped to this frame, into ``output`` where the flow is reliable."""
        if self.strength <= 0.0 or self.prev_output is None:
            return output
        m = self.motion()
        # Bicubic, not bilinear: a pixel's history goes through several warps, and bilinear sampling blurs
        # it a little each time (bench/video_temporal.py: +12.7% style distance at 0.8 vs +5.3% bicubic).
        warped = backward_warp(self.prev_output.to(output), m.flow.to(output), mode="bicubic")
        return (output + self.strength * m.reliable.to(output) * (warped - output)).clamp(0, 1)

    def end_frame(self, output: torch.Tensor) -> None:
        self.prev_input, self.prev_output = self._frame, output.detach()
        self._frame = None
        self.frame_index += 1
