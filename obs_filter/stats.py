"""Live figures of the pipeline: frame rate, per-stage latency and dropped frames.

Each frame that reaches the sink leaves one :class:`FrameTimes`; :class:`LiveStats` keeps the last ``window`` of
them (bounded: the memory of a stream that runs for days stays flat) and turns them into figures, a log line and an
overlay. Stages: ``capture`` (the source producing the frame), ``queue`` (waiting for the stylizer), ``stylize``,
``output`` (waiting for and encoding/sending to the sink) and ``total`` (capture start to sent).
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass

import numpy as np

STAGES = ("capture", "queue", "stylize", "output", "total")
OVERLAY_REFRESH_S = 0.5


@dataclass
class FrameTimes:
    index: int             # the source's frame number
    capture_start: float   # time.perf_counter() when the source began producing it
    captured: float        # ... when it was handed to the stylizer
    stylize_start: float
    stylize_end: float
    sent: float = 0.0
    style: str = ""
    stamp: int = -1        # the frame counter drawn into it, -1 when frames are not stamped

    def stages(self) -> dict[str, float]:
        return {"capture": self.captured - self.capture_start, "queue": self.stylize_start - self.captured,
                "stylize": self.stylize_end - self.stylize_start, "output": self.sent - self.stylize_end,
                "total": self.sent - self.capture_start}


class LiveStats:
    def __init__(self, window: int = 300):
        self._frames: collections.deque[FrameTimes] = collections.deque(maxlen=window)
        self._lock = threading.Lock()
        self.sent = 0                  # frames delivered to the sink since the start
        self.started = time.perf_counter()
        self.dropped_capture = 0       # frames the stylizer never saw (it was busy with an older one)
        self.dropped_output = 0        # stylized frames replaced before the sink took them
        self.sink_errors = 0
        self._overlay_at, self._overlay_figures = float("-inf"), ""

    def record(self, frame: FrameTimes) -> None:
        with self._lock:
            self._frames.append(frame)
            self.sent += 1

    def recent(self) -> list[FrameTimes]:
        with self._lock:
            return list(self._frames)

    def snapshot(self) -> dict:
        """fps over the window, each stage's median and 95th percentile in ms, and the drop counters."""
        frames = self.recent()
        figures: dict = {"frames": self.sent, "dropped_capture": self.dropped_capture,
                         "dropped_output": self.dropped_output, "sink_errors": self.sink_errors,
                         "seconds": time.perf_counter() - self.started}
        if len(frames) >= 2 and frames[-1].sent > frames[0].sent:
            figures["fps"] = (len(frames) - 1) / (frames[-1].sent - frames[0].sent)
        else:
            figures["fps"] = 0.0
        if frames:
            table = np.array([[f.stages()[s] for s in STAGES] for f in frames]) * 1000.0
            for i, stage in enumerate(STAGES):
                figures[f"{stage}_ms_p50"] = float(np.median(table[:, i]))
                figures[f"{stage}_ms_p95"] = float(np.percentile(table[:, i], 95))
        return figures

    def line(self) -> str:
        f = self.snapshot()
        if "total_ms_p50" not in f:
            return f"{f['frames']} frames, waiting for the first"
        return (f"{f['fps']:.1f} fps | latency {f['total_ms_p50']:.0f} ms (p95 {f['total_ms_p95']:.0f}) = capture "
                f"{f['capture_ms_p50']:.0f} + queue {f['queue_ms_p50']:.0f} + stylize {f['stylize_ms_p50']:.0f} + "
                f"output {f['output_ms_p50']:.0f} | dropped {f['dropped_capture']} in, {f['dropped_output']} out | "
                f"{f['frames']} frames")

    def overlay(self, frame: np.ndarray, style: str) -> np.ndarray:
        """Draw the figures into the corner of an RGB uint8 frame (in place) and return it."""
        import cv2

        now = time.perf_counter()
        if now - self._overlay_at > OVERLAY_REFRESH_S:
            # The figures are redrawn twice a second: readable, and the window's statistics are not redone per frame.
            f = self.snapshot()
            self._overlay_figures = (f"{f['fps']:.1f} fps  {f.get('total_ms_p50', 0):.0f} ms  "
                                     f"drop {f['dropped_capture']}")
            self._overlay_at = now
        text = f"{style}  {self._overlay_figures}"
        scale = max(frame.shape[1] / 1280, 0.35)
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = 6, frame.shape[0] - 6
        # Darken a box behind the text so it stays legible on any style, then write it in white.
        box = frame[max(y - h - base - 4, 0):y + 2, x - 4:x + w + 4]
        box //= 3
        cv2.putText(frame, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        return frame
