"""Video out with PyAV: H.264 (.mp4/.mov/.mkv, yuv420p, tagged BT.709) or PNG frame sequences, source
timestamps kept (variable frame rate too), audio copied or trimmed in sync; the target appears only when complete.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from av.video.reformatter import Interpolation, VideoReformatter

from ..errors import BrushstreamError, reason
from .atomic import _create_temp
from .image import _unwritable_reason, check_finite, to_uint8
from .video_audio import AudioCarrier, AudioSource

__all__ = ["VideoWriter", "check_video_output"]

CONTAINER_SUFFIXES = {".mp4", ".mov", ".mkv"}
MIN_SIDE = 16
FINE_TICKS = 90_000         # output time base: at least this fine, and a multiple of the frame rate
_BT709, _LIMITED = 1, 1     # AVCOL_* values for tagging the output
_PATTERN = re.compile(r"%0?\d*d")



def _pattern_folder(path: Path) -> Path | None:
    """For a frame pattern such as out/frame_%05d.png, the folder the frames go to; else None."""
    return path.parent if len(_PATTERN.findall(path.name.replace("%%", ""))) == 1 else None


def check_video_output(path) -> Path:
    """Refuse an output we cannot write before any work is done; creates nothing."""
    if str(path) == "-":
        raise BrushstreamError("-: writing to standard output is not supported; give a file name")
    path = Path(path)
    folder = _pattern_folder(path)
    if folder is not None:
        if path.suffix.lower() != ".png":
            raise BrushstreamError(f"{path}: image sequences are written as PNG; use a pattern like out/frame_%05d.png")
        if folder == Path(path.anchor or "."):
            raise BrushstreamError(f"{path}: put the frames in a folder of their own, e.g. out/{path.name}")
        if os.path.lexists(folder) and not os.path.isdir(folder):
            raise BrushstreamError(f"{folder}: exists and is not a directory")
        if os.path.isdir(folder) and any(os.scandir(folder)):
            raise BrushstreamError(f"{folder}: already exists and is not empty; give a new or empty folder")
        problem = _unwritable_reason(folder)
    else:
        if os.path.isdir(path):
            raise BrushstreamError(f"{path}: is a directory")
        if path.suffix.lower() not in CONTAINER_SUFFIXES:
            raise BrushstreamError(
                f"{path}: cannot write {path.suffix or 'a file without extension'}; use "
                f"{', '.join(sorted(CONTAINER_SUFFIXES))} or a PNG pattern like out/frame_%05d.png")
        problem = _unwritable_reason(path)
    if problem:
        raise BrushstreamError(f"{path}: cannot write here ({problem})")
    return path


def _mux(container, packet) -> None:
    container.mux(packet)  # one place for every write, so tests can make the disk run full


def _save_png(rgb: np.ndarray, path: Path) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path.name}")


class VideoWriter:
    """Write frames to H.264 (.mp4/.mov/.mkv) or a PNG sequence; the target appears only when complete.

    ``time`` is source seconds; ``time - time_offset`` is kept as the frame's output timestamp, so a
    variable frame rate survives. PNG sequences carry neither timestamps nor audio.
    """

    def __init__(self, path, *, size: tuple[int, int], fps: Fraction, audio: AudioSource | None = None,
                 crf: int = 18, preset: str = "medium", time_offset: float = 0.0):
        self.path = check_video_output(path)
        self.size, self.time_offset = (int(size[0]), int(size[1])), float(time_offset)
        self.fps = Fraction(fps).limit_denominator(100_000)  # a float rate must not become a 2**40 time base
        if self.size[0] % 2 or self.size[1] % 2 or min(self.size) < MIN_SIDE:
            raise ValueError(f"size must be even and at least {MIN_SIDE} px per side, not {size!r}")
        self._folder = _pattern_folder(self.path)
        self._count, self._last_pts, self._last_time = 0, None, 0.0
        self._container = self._audio = self._tmp = None
        self._sws = VideoReformatter()
        self._done = False
        with self._guard():
            if self._folder is not None:
                self._folder.parent.mkdir(parents=True, exist_ok=True)
                self._tmp = self._folder.with_name(f".{self._folder.name}.{secrets.token_hex(4)}")
                self._tmp.mkdir()
            else:
                self._open_container(crf, preset, audio)

    def _open_container(self, crf: int, preset: str, audio: AudioSource | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _create_temp(self.path)  # hidden, beside the target; its suffix picks the muxer
        suffix = self.path.suffix.lower()
        options = {"movflags": "+faststart"} if suffix in (".mp4", ".mov") else {}
        self._container = av.open(str(self._tmp), "w", options=options)
        stream = self._stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = *self.size, "yuv420p"
        # A tick fine enough for any variable-rate timestamp and a whole number of ticks per nominal frame.
        self._tb = Fraction(1, self.fps.numerator * -(-FINE_TICKS // self.fps.numerator))
        stream.time_base = stream.codec_context.time_base = self._tb
        cc = stream.codec_context
        cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
        cc.color_range = _LIMITED
        cc.thread_type = "AUTO"
        cc.options = {"crf": str(crf), "preset": preset}
        if audio is not None:
            self._audio = AudioCarrier(self._container, audio, suffix)

    @contextlib.contextmanager
    def _guard(self):
        """Any failure while writing leaves nothing behind and says so in one line."""
        try:
            yield
        except BrushstreamError:
            self.abort()
            raise
        except (OSError, av.error.FFmpegError) as exc:
            self.abort()
            raise BrushstreamError(f"{self.path}: could not write the video ({reason(exc)})") from None

    def write(self, image: torch.Tensor, time: float | None = None) -> None:
        if self._done:
            raise ValueError(f"{self.path}: the writer is already closed")
        image = image[0] if image.dim() == 4 else image
        if tuple(image.shape) != (3, self.size[1], self.size[0]):
            raise ValueError(f"expected a (3, {self.size[1]}, {self.size[0]}) image, got {tuple(image.shape)}")
        with self._guard():
            check_finite(image, self.path)
        rgb = to_uint8(image)
        out_time = self._count / float(self.fps) if time is None else float(time) - self.time_offset
        with self._guard():
            if self._folder is not None:
                _save_png(rgb, self._tmp / (self.path.name % (self._count + 1)))
            else:
                self._encode(rgb, out_time)
        self._count += 1

    def _encode(self, rgb: np.ndarray, out_time: float) -> None:
        # The BT.709 matrix the stream is tagged with; accurate rounding lands about one level closer.
        frame = self._sws.reformat(av.VideoFrame.from_ndarray(rgb, format="rgb24"), format="yuv420p",
                                   dst_colorspace="ITU709", dst_color_range="MPEG",
                                   interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND)
        frame.color_primaries = frame.color_trc = _BT709
        pts = round(out_time / self._tb)
        if self._last_pts is not None:
            pts = max(pts, self._last_pts + 1)  # float rounding must not make two frames collide
        frame.pts, frame.time_base = pts, self._tb
        self._last_pts, self._last_time = pts, float(pts * self._tb)
        if self._audio is not None:
            self._audio.pump(self._last_time, self._mux)
        for packet in self._stream.encode(frame):
            _mux(self._container, packet)

    def _mux(self, packet) -> None:
        _mux(self._container, packet)

    def close(self) -> Path:
        """Finish the file (flush, trailer, remaining audio) and move it into place."""
        if self._done:
            return self.path
        with self._guard():
            if self._count == 0:
                raise BrushstreamError(f"{self.path}: no frames were written")
            if self._folder is not None:
                os.replace(self._tmp, self._folder)  # an empty folder is replaced; a full one refuses
            else:
                for packet in self._stream.encode(None):
                    _mux(self._container, packet)
                if self._audio is not None:
                    self._audio.finish(self._last_time + 1 / float(self.fps), self._mux)
                    self._audio.close()
                self._container.close()
                os.replace(self._tmp, self.path)
            self._done = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; nothing appears at the target."""
        self._done = True
        for thing in (self._audio, self._container):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        self._audio = self._container = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._tmp) if self._tmp.is_dir() else os.unlink(self._tmp)
            self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
