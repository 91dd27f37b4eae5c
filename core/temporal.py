"""The state one stream (a video, a camera) carries from frame to frame.

A method makes one with ``method.new_state()`` and the host passes it to every ``stylize(..., state=)``
call of that stream, frames in order. The base class keeps the frame index and resets the state when
the frame size changes; what a method remembers (previous frames and outputs, features, recurrent
hidden state) lives in ``data`` under keys of its own. Later: flow, occlusion and scene-cut resets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamState:
    method: str                                   # the method that made it (a state is not portable)
    frame_index: int = 0                          # frames stylized so far in this stream
    size: tuple[int, int] | None = None           # (H, W) of the last frame
    data: dict[str, Any] = field(default_factory=dict)
    resets: int = 0                               # how many times the history was dropped

    def reset(self) -> None:
        """Forget the history (scene cut, size change, seek); the frame index keeps counting."""
        self.data.clear()
        self.size = None
        self.resets += 1

    def begin_frame(self, size: tuple[int, int]) -> None:
        """Called by the method before each frame: a new size makes the history meaningless."""
        size = (int(size[0]), int(size[1]))
        if self.size is not None and self.size != size:
            self.reset()
        self.size = size

    def end_frame(self) -> None:
        self.frame_index += 1
