"""Where live frames come from: a camera, a looped video file, or an OBS source pulled as screenshots.

Every source yields RGB uint8 frames (H, W, 3) of exactly the stream's size: the picture is scaled to cover that
size, keeping its aspect, and centre-cropped. ``open_source("camera:0" | "obs:NAME" | FILE, size, fps)`` checks
the source before any thread starts, so a wrong device or a broken file is one line, not a stalled stream.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core.errors import BrushstreamError
from ..core.io.image import to_uint8


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` to cover ``size`` (W, H) keeping its aspect, then crop the centre."""
    w, h = size
    ih, iw = rgb.shape[:2]
    if (iw, ih) == (w, h):
        return rgb
    scale = max(w / iw, h / ih)
    sw, sh = max(w, round(iw * scale)), max(h, round(ih * scale))
    shrinking = sw <= iw and sh <= ih
    scaled = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    x, y = (sw - w) // 2, (sh - h) // 2
    return np.ascontiguousarray(scaled[y:y + h, x:x + w])


def _next_due(due: float | None, fps: float) -> float:
    """When the next frame is due: one interval after the last, or now when that is already a frame late (a
    stall is not caught up with a burst, which would only be dropped downstream)."""
    now = time.perf_counter()
    if due is None or now - (due + 1.0 / fps) > 1.0 / fps:
        return now
    return due + 1.0 / fps


def _sleep_until(due: float) -> float:
    wait = due - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
    return max(wait, 0.0)


class FrameSource:
    """``read()`` returns the next frame, blocking until it is due; ``SourceLost`` when the device went away.
    ``waited`` is how long the last read slept for pacing: that time is not capture latency."""
    name: str = "source"
    fps: float = 30.0
    waited: float = 0.0

    def read(self) -> np.ndarray:
        raise NotImplementedError

    def reopen(self) -> None:
        """Try to get the device back after ``SourceLost`` (raises it again while it is still gone)."""

    def close(self) -> None:
        pass


class SourceLost(Exception):
    """The source stopped delivering (camera unplugged, OBS gone); the pipeline retries ``reopen``."""


class CameraSource(FrameSource):
    def __init__(self, index: int, size: tuple[int, int], fps: float, capture: Callable = cv2.VideoCapture):
        self.name, self.index, self.size, self.fps, self._capture = f"camera:{index}", index, size, fps, capture
        self._cam = None
        self._due: float | None = None
        try:
            self.reopen()
        except SourceLost:
            raise BrushstreamError(f"{self.name}: cannot open the camera (no such device, or it is in use)") from None

    def reopen(self) -> None:
        self.close()
        # OpenCV logs its own lines about missing devices on stderr; the filter says it once, in one line.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        cam = self._capture(self.index)
        if not cam.isOpened():
            raise SourceLost(f"{self.name}: cannot open the camera")
        # Ask for the stream's size and rate; a camera that cannot do them gives its nearest and fit() scales.
        cam.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        cam.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        cam.set(cv2.CAP_PROP_FPS, self.fps)
        cam.set(cv2.CAP_PROP_BUFFERSIZE, 1)   # the newest frame, not a backlog (where the backend supports it)
        self._cam = cam

    def read(self) -> np.ndarray:
        if self._cam is None:
            raise SourceLost(f"{self.name}: the camera is closed")
        # A camera that ignores the requested rate runs faster than the target: frames that come before the next
        # one is due are grabbed and let go (cheap: not decoded), so the stream holds the target fps.
        began = time.perf_counter()
        due = self._due + 1.0 / self.fps if self._due is not None else began
        while True:
            if not self._cam.grab():
                raise SourceLost(f"{self.name}: the camera stopped delivering frames")
            now = time.perf_counter()
            if now >= due - 0.25 / self.fps:
                break
        self._due = now if now - due > 1.0 / self.fps else due
        self.waited = now - began
        ok, bgr = self._cam.retrieve()
        if not ok or bgr is None:
            raise SourceLost(f"{self.name}: the camera stopped delivering frames")
        return fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.size)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.release()
            self._cam = None


class FileSource(FrameSource):
    """A video file played in real time at its own rate (at most ``fps``), looped for ever."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float):
        from ..core.io.video import probe_video

        self.path, self.size = Path(path), size
        info = probe_video(self.path)   # a missing, empty or corrupt file fails here, in one line
        self.name = self.path.name
        self.fps = min(float(info.fps), fps) if info.fps else fps
        # Decoded at the size that covers the stream's, keeping the aspect; fit() crops the rest.
        scale = max(size[0] / info.width, size[1] / info.height)
        self._read_size = max(size[0], round(info.width * scale)), max(size[1], round(info.height * scale))
        self._frames = self._loop()
        self._due = None

    def _loop(self):
        from ..core.io.video import VideoReader

        for _ in itertools.count():
            for frame in VideoReader(self.path, size=self._read_size):
                yield to_uint8(frame.image)

    def read(self) -> np.ndarray:
        # Real-time playback: each frame is released at its slot, decoded just before it.
        self._due = _next_due(self._due, self.fps)
        self.waited = _sleep_until(self._due)
        return fit(next(self._frames), self.size)


class ObsScreenshotSource(FrameSource):
    """Any OBS source, pulled through obs-websocket's GetSourceScreenshot: a low-rate fallback (JPEG round trips)."""

    def __init__(self, source: str, size: tuple[int, int], fps: float, connect: Callable):
        self.name, self.source, self.size, self.fps, self._connect = f"obs:{source}", source, size, min(fps, 10.0), \
            connect
        self._client = None
        self._due = None
        try:
            self.reopen()
            self.read()
        except SourceLost as exc:
            raise BrushstreamError(str(exc)) from None

    def reopen(self) -> None:
        try:
            self._client = self._connect()
        except BrushstreamError as exc:
            raise SourceLost(f"{self.name}: {exc}") from None
        except Exception as exc:   # any failure to reach OBS is the same to the pipeline
            raise SourceLost(f"{self.name}: cannot reach OBS ({type(exc).__name__}: {exc})") from None

    def read(self) -> np.ndarray:
        import base64

        self._due = _next_due(self._due, self.fps)
        self.waited = _sleep_until(self._due)
        try:
            shot = self._client.get_source_screenshot(self.source, "jpg", self.size[0], self.size[1], 90)
        except Exception as exc:
            raise SourceLost(f"{self.name}: screenshot failed ({type(exc).__name__}: {exc})") from None
        data = base64.b64decode(shot.image_data.split(",", 1)[-1])
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SourceLost(f"{self.name}: OBS sent an unreadable screenshot")
        return fit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.size)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:
                pass


def open_source(spec: str, size: tuple[int, int], fps: float, obs_connect: Callable | None = None) -> FrameSource:
    """``camera:N``, ``obs:SOURCE NAME`` or a video file."""
    if spec.startswith("camera:"):
        index = spec.split(":", 1)[1]
        if not index.isdigit():
            raise BrushstreamError(f"{spec}: a camera is camera:N with N its number (camera:0 is the first)")
        return CameraSource(int(index), size, fps)
    if spec.startswith("obs:"):
        if obs_connect is None:
            raise BrushstreamError(f"{spec}: an OBS source needs the obs-websocket connection")
        return ObsScreenshotSource(spec.split(":", 1)[1], size, fps, obs_connect)
    if not Path(spec).exists():
        raise BrushstreamError(f"{spec}: no such file (a source is camera:N, obs:SOURCE or a video file)")
    return FileSource(spec, size, fps)
