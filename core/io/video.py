"""Video in with PyAV: probing, streaming decode to RGB tensors (containers, animated GIF, frame folders).

The writer lives in video_writer.py; both are re-exported here so callers import one module.
"""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from ..errors import BrushstreamError, reason
from .image import _check_file, from_uint8, image_size, list_images, load_image
from .video_audio import AudioSource
from .video_writer import MIN_SIDE, VideoWriter, check_video_output

__all__ = ["VideoInfo", "probe_video", "output_size", "VideoFrame", "VideoReader", "AudioSource",
           "VideoWriter", "check_video_output"]

FOLDER_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
RATE_SAMPLE = 100           # packets whose timestamps decide variable_rate
# AVColorSpace tags -> the swscale matrix that decodes them; anything else falls back by height.
_MATRICES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_FULL = 2                   # AVCOL_RANGE_JPEG


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    kind: str                 # "container" | "gif" | "folder"
    width: int
    height: int               # first frame's size (after the stream's display rotation)
    fps: Fraction             # average frame rate
    frame_count: int | None   # best estimate, None if unknown
    duration: float | None    # seconds
    variable_rate: bool       # timestamps are not evenly spaced
    has_audio: bool


@dataclass
class VideoFrame:
    index: int                # 0-based index of the frame in the source
    time: float               # seconds from the source's first frame
    image: torch.Tensor       # (1, 3, H, W) float32 in [0, 1], at the requested size



def _open(path: Path):
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise BrushstreamError(
            f"{path}: not a readable video (unknown format or corrupt header: {reason(exc)})") from None


def _video_stream(container, path: Path):
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:  # cover art is no video
            stream.codec_context.thread_type = "AUTO"
            return stream
    raise BrushstreamError(f"{path}: has no video stream")


def _folder_images(path: Path) -> list[Path]:
    files = [p for p in list_images(path) if p.suffix.lower() in FOLDER_SUFFIXES]
    if not files:
        raise BrushstreamError(f"{path}: holds no images ({', '.join(sorted(FOLDER_SUFFIXES))})")
    return files


def _variable(stamps: list[int], time_base: Fraction) -> bool:
    deltas = np.diff(np.sort(np.asarray(stamps, dtype=np.float64))) * float(time_base)
    if len(deltas) < 2:
        return False
    median = float(np.median(deltas))
    # A millisecond time base turns 29.97 fps into 33/34 ms steps: that rounding is not VFR.
    slack = max(1.5 * float(time_base), 0.05 * median)
    return bool(np.any(np.abs(deltas - median) > slack))


def _expected_end(stream, container) -> float | None:
    """The video stream's duration from the header, if the file states one for this stream."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", stream.metadata.get("DURATION", ""))  # Matroska
    if match:
        h, m, s = match.groups()
        return int(h) * 3600 + int(m) * 60 + float(s)
    return None


def probe_video(path, *, folder_fps: float = 25.0) -> VideoInfo:
    """Everything known about a clip from its headers and first frame; bad input raises one line."""
    path = Path(path)
    if not folder_fps > 0:
        raise BrushstreamError(f"{path}: the frame rate for an image folder must be positive, not {folder_fps}")
    if os.path.isdir(path):
        files = _folder_images(path)
        h, w = image_size(files[0])
        fps = Fraction(folder_fps).limit_denominator(100_000)
        return VideoInfo(path, "folder", w, h, fps, len(files), len(files) / folder_fps, False, False)
    _check_file(path)
    with contextlib.closing(_open(path)) as container:
        stream = _video_stream(container, path)
        stamps, durations, first = [], [], None
        gif = container.format.name == "gif"
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    stamps.append(packet.pts)
                    durations.append(packet.duration or 0)
                if first is None:
                    first = next(iter(stream.decode(packet)), None)
                if first is not None and len(stamps) >= RATE_SAMPLE and not gif:  # GIFs are read whole
                    break
        except av.error.FFmpegError as exc:
            raise BrushstreamError(f"{path}: cannot decode the first frame ({reason(exc)})") from None
        if first is None:
            raise BrushstreamError(f"{path}: has no frames")
        w, h = _display_size(first)
        tb = stream.time_base
        if gif:  # frame delays are all a GIF has
            duration = float((stamps[-1] - stamps[0] + durations[-1]) * tb)
            count = len(stamps)
            fps = Fraction(count / duration).limit_denominator(1001) if duration > 0 else Fraction(10)
        else:
            fps = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not fps and len(stamps) > 1:
                fps = Fraction((len(stamps) - 1) / float((max(stamps) - min(stamps)) * tb)).limit_denominator(1001)
            fps = Fraction(fps or 25)
            duration = _expected_end(stream, container)
            if duration is None and container.duration:
                duration = container.duration / av.time_base
            by_time = round(duration * fps) if duration else None
            # An edit list can hide frames the index still counts: the shorter estimate wins.
            count = min(stream.frames, by_time or stream.frames) if stream.frames else by_time
        return VideoInfo(path, "gif" if gif else "container", w, h, fps, count, duration,
                         _variable(stamps, tb), bool(container.streams.audio))


def _display_size(frame) -> tuple[int, int]:
    """(W, H) as shown: a phone clip stored sideways carries a 90-degree display rotation."""
    return (frame.height, frame.width) if _quarter_turns(frame) % 2 else (frame.width, frame.height)


def _quarter_turns(frame) -> int:
    rotation = getattr(frame, "rotation", 0) or 0
    return round(rotation / 90) % 4  # counterclockwise, as np.rot90 turns


def _even(x: float) -> int:
    return int(x / 2 + 0.5) * 2  # yuv420p needs even sides; halves round up


def output_size(width: int, height: int, out_height: int | None) -> tuple[int, int]:
    """(W, H) to work and write at: the requested height, the source's aspect ratio, even sides."""
    h = out_height if out_height is not None else height
    w = width * h / height if height else 0
    size = (_even(w), _even(h))
    if min(size) < MIN_SIDE:
        raise BrushstreamError(
            f"{width}x{height}: the output would be {size[0]}x{size[1]} px; each side needs at least {MIN_SIDE} px")
    return size


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = rgb.shape[:2]
    if (w, h) == size:
        return rgb
    shrinking = size[0] <= w and size[1] <= h
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _frame_rgb(frame, fallback, sws: VideoReformatter) -> np.ndarray:
    """Decode to RGB with the matrix and range the stream is tagged with (untagged: by height, as players do)."""
    fmt = frame.format
    if fmt.is_rgb or fmt.has_palette or len(fmt.components) < 3:
        rgb = sws.reformat(frame, format="rgb24").to_ndarray()
    else:
        space = frame.colorspace if frame.colorspace in _MATRICES else fallback.colorspace
        matrix = _MATRICES.get(space, "ITU709" if frame.height >= 720 else "ITU601")
        full = fmt.name.startswith("yuvj") or (frame.color_range or fallback.color_range) == _FULL
        rgb = sws.reformat(frame, format="rgb24", src_colorspace=matrix,
                           src_color_range="JPEG" if full else "MPEG").to_ndarray()
    turns = _quarter_turns(frame)
    return np.rot90(rgb, turns) if turns else rgb


class VideoReader:
    """Iterate a clip as VideoFrame objects, one decoded frame in memory at a time."""

    def __init__(self, path, *, size: tuple[int, int] | None = None, start: float = 0.0,
                 max_frames: int | None = None, folder_fps: float = 25.0):
        self.path = Path(path)
        self.info = probe_video(self.path, folder_fps=folder_fps)
        try:
            self.size = tuple(size) if size is not None else output_size(self.info.width, self.info.height, None)
        except BrushstreamError as exc:
            raise BrushstreamError(f"{self.path}: {exc}") from None
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (width, height) in pixels, not {size!r}")
        self.start, self.max_frames = max(0.0, float(start)), max_frames
        self._container = None

    def __iter__(self) -> Iterator[VideoFrame]:
        frames = self._folder_frames() if self.info.kind == "folder" else self._container_frames()
        count = 0
        try:
            for frame in frames:
                if self.max_frames is not None and count >= self.max_frames:
                    break
                yield frame
                count += 1
        finally:
            frames.close()
            self.close()
        if count == 0 and self.max_frames != 0:
            where = f" at or after {self.start:g} s" if self.start > 0 else ""
            raise BrushstreamError(f"{self.path}: has no frames{where}")

    def _check_size(self, index: int, w: int, h: int) -> None:
        if (w, h) != (self.info.width, self.info.height):
            raise BrushstreamError(
                f"{self.path}: frame {index} is {w}x{h} but the clip started at {self.info.width}x{self.info.height}; "
                "clips that change resolution midway are not supported")

    def _folder_frames(self) -> Iterator[VideoFrame]:
        fps = self.info.fps
        first = int(np.ceil(self.start * fps - 1e-9))
        for index, file in enumerate(_folder_images(self.path)[first:], start=first):
            image = load_image(file).image
            h, w = image.shape[-2:]
            self._check_size(index, w, h)
            rgb = _resize(image[0].permute(1, 2, 0).numpy(), self.size)  # float32: 16-bit files keep their depth
            yield VideoFrame(index, float(index / fps), torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
                             .unsqueeze(0).clamp_(0, 1))

    def _container_frames(self) -> Iterator[VideoFrame]:
        path, info, sws = self.path, self.info, VideoReformatter()  # one scaler context, reused for every frame
        self._container = container = _open(path)
        stream = _video_stream(container, path)
        tb, origin = stream.time_base, stream.start_time
        # GIFs are small, and without a start time the seek target is unknown: decode those from the start.
        sought = self.start > 0 and info.kind != "gif" and origin is not None
        if sought and not self._seek(stream, origin):
            self._container = container = _open(path)  # this file cannot seek: decode from the start
            stream, sought = _video_stream(container, path), False
        index, last = None, None
        try:
            for frame in container.decode(stream):
                pts = frame.pts if frame.pts is not None else frame.dts
                if origin is None:
                    origin = pts or 0
                if pts is None:  # no timestamp at all: assume the nominal rate
                    time = last + 1 / float(info.fps) if last is not None else 0.0
                else:
                    time = float((pts - origin) * tb)
                if index is None:
                    index = self._first_index(time, pts) if sought else 0
                last = time
                if time < self.start - 1e-6:
                    index += 1
                    continue
                self._check_size(index, *_display_size(frame))
                rgb = _resize(_frame_rgb(frame, stream.codec_context, sws), self.size)
                yield VideoFrame(index, time, from_uint8(rgb))
                index += 1
        except av.error.FFmpegError as exc:
            raise BrushstreamError(f"{path}: decoding failed at frame {index or 0} ({reason(exc)}); "
                                   "the file is truncated or corrupt") from None
        expected, step = _expected_end(stream, container), 1 / float(info.fps)
        short = last is not None and expected and last + 2 * step < 0.98 * expected
        if short and (not stream.frames or index < stream.frames):
            # Some demuxers end quietly at the cut of a truncated file; the header still knows the length.
            # (Both the count and the length must fall short: a long last frame or an edit list is no cut.)
            raise BrushstreamError(f"{path}: the video stops at frame {index} ({last + step:.2f} s) but its header "
                                   f"says {expected:.2f} s; the file is truncated or corrupt")

    def _seek(self, stream, origin: int) -> bool:
        """Jump to the keyframe at or before ``start``; decoding forward from there finds the exact frame."""
        try:
            self._container.seek(origin + int(self.start / stream.time_base), stream=stream, backward=True)
        except (av.error.FFmpegError, OSError):
            self._container.close()
            return False
        return True

    def _first_index(self, time: float, pts: int | None) -> int:
        """Index of the first frame decoded after a seek: by the rate if it is constant, else by counting packets."""
        if not self.info.variable_rate or pts is None:
            return round(time * float(self.info.fps))
        with contextlib.closing(_open(self.path)) as container:
            stream = _video_stream(container, self.path)
            count, past = 0, 0
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                if packet.pts < pts:
                    count += 1
                elif (past := past + 1) > 32:  # B-frame reordering can put earlier frames a few packets later
                    break
            return count

    def close(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
