"""Where stylized frames go: a local MPEG-TS stream that an OBS Media Source plays, or a virtual camera.

Stream: H.264 (x264 ``ultrafast`` + ``zerolatency``, no B-frames, a keyframe every second so a player that joins
late, or OBS after a restart, starts within a second) in MPEG-TS over UDP to 127.0.0.1. Frames are converted to
BT.709 limited-range YUV 4:2:0 and the stream says so in its VUI: OBS reads those tags, and a stream converted
with the BT.601 matrix but left untagged is shown colour-shifted.

Latency into OBS (bench/obs_live.py, frame counter method): OBS's Media Source paces frames by their timestamps
from the first frame on, and its decoder holds back a frame per CPU. So by default timestamps advance 1 ms a frame
('asap': every frame is due on arrival; there is no audio to keep in sync), each frame is followed by "flush
copies" of itself (all-skip P-frames, a few hundred bytes), and each PES carries its length. Measured on this
2-core machine: 167 ms -> 57 ms from capture to OBS's picture.

Virtual camera: pyvirtualcam, fed in its backend's native pixel format (NV12 for OBS on Windows, UYVY on macOS,
I420 for v4l2loopback) so the backend does no conversion of its own.
"""
from __future__ import annotations

import fractions
import logging
import os
import time

import cv2
import numpy as np

from ..core.errors import BrushstreamError

log = logging.getLogger("brushstream.obs")

DEFAULT_PORT = 5600


class FrameSink:
    name = "sink"

    def send(self, rgb: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def default_flush_copies() -> int:
    """FFmpeg's decoders pick CPU count + 1 frame threads (at most 16) when asked for 'auto', as OBS's Media Source
    does, and frame threading holds back one frame per extra thread: send that many copies after each frame."""
    return min(os.cpu_count() or 1, 16)


class UdpStreamSink(FrameSink):
    def __init__(self, size: tuple[int, int], fps: float, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                 crf: int = 20, flush_copies: int | None = None, timestamps: str = "asap"):
        if size[0] % 2 or size[1] % 2:
            raise BrushstreamError(f"the stream's size must be even for H.264 4:2:0, not {size[0]}x{size[1]}")
        if timestamps not in ("clock", "asap"):
            raise ValueError(f"timestamps must be 'clock' or 'asap', not {timestamps!r}")
        self.size, self.fps, self.port, self.host, self.crf = size, fps, port, host, crf
        self.flush_copies = default_flush_copies() if flush_copies is None else int(flush_copies)
        self.timestamps = timestamps
        self.url = f"udp://{host}:{port}"
        self.name = f"stream {self.url}"
        self._container = None
        self._t0 = None
        self._last_pts = -1
        self.reconnects = 0
        self._open()

    def player_url(self) -> str:
        """What a player (OBS's Media Source) opens: this port, bound to loopback only."""
        return f"udp://{self.host}:{self.port}?localaddr={self.host}"

    def _open(self) -> None:
        import av

        try:
            # pkt_size: seven 188-byte TS packets per datagram; no mux delay, so packets leave with their frame.
            # omit_video_pes_length=0: each video PES says how long it is, so a demuxer hands the frame on at once
            # instead of waiting for the next frame's header to find where this one ends (one frame of latency).
            container = av.open(f"{self.url}?pkt_size=1316", "w", format="mpegts",
                                options={"max_delay": "0", "flush_packets": "1", "omit_video_pes_length": "0"})
        except (av.error.FFmpegError, OSError) as exc:
            raise BrushstreamError(f"{self.url}: cannot open the stream ({exc})") from None
        stream = container.add_stream("libx264", rate=max(1, round(self.fps)))
        stream.width, stream.height, stream.pix_fmt = self.size[0], self.size[1], "yuv420p"
        ctx = stream.codec_context
        ctx.time_base = fractions.Fraction(1, 1000)
        # Constant quality, not a bitrate: rate control that reads timestamps would be misled by flush copies and
        # 'asap' timestamps. A keyframe every second of real frames.
        gop = max(1, round(self.fps)) * (1 + self.flush_copies)
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": str(self.crf), "g": str(gop),
                       "bf": "0", "threads": "1"}
        # The VUI tags OBS reads to pick its matrix: BT.709 primaries, transfer and matrix, limited range.
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 1, 1, 1, 1
        self._container, self._stream = container, stream

    def _yuv(self, rgb: np.ndarray):
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.colorspace, frame.color_range = 1, 1
        return frame

    def _stamp(self, frame, copy: bool) -> None:
        """pts in ms. 'clock': the wall clock, so players pace frames as they were made. 'asap': 1 ms after the
        last, so a player that paces by pts (OBS) finds every frame already due and shows it on arrival."""
        now = time.perf_counter()
        self._t0 = now if self._t0 is None else self._t0
        clock = int((now - self._t0) * 1000) if self.timestamps == "clock" and not copy else 0
        pts = max(clock, self._last_pts + 1)
        frame.pts, frame.time_base, self._last_pts = pts, fractions.Fraction(1, 1000), pts

    def send(self, rgb: np.ndarray) -> None:
        import av

        try:
            frame = self._yuv(rgb)
            # Flush copies: the same picture again (an all-skip P-frame, a few hundred bytes), which pushes the real
            # frame out of a player's frame-threaded decoder that holds back one frame per thread.
            for copy in range(1 + self.flush_copies):
                self._stamp(frame, copy > 0)
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            # Nobody listening (OBS closed) can make a datagram fail; the stream goes on with a fresh muxer so a
            # player that comes back gets headers and a keyframe.
            log.warning("%s: %s; reopening the stream", self.name, exc)
            self._reopen()

    def _reopen(self) -> None:
        self._close_container()
        self._t0, self._last_pts = None, -1
        self._open()
        self.reconnects += 1

    def _close_container(self) -> None:
        import av

        container, self._container = self._container, None
        if container is None:
            return
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        except (av.error.FFmpegError, OSError, ValueError):
            pass
        try:
            container.close()
        except (av.error.FFmpegError, OSError):
            pass

    def close(self) -> None:
        self._close_container()


# pyvirtualcam format name -> how to turn an RGB frame into it (OpenCV's conversions use the BT.601 matrix, as
# the backends' own converters do).
def _rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)


def _rgb_to_nv12(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).reshape(-1)
    y, u, v = i420[:w * h], i420[w * h:w * h * 5 // 4], i420[w * h * 5 // 4:]
    uv = np.empty(w * h // 2, np.uint8)
    uv[0::2], uv[1::2] = u, v
    return np.concatenate([y, uv])


CONVERSIONS = {
    "RGB": lambda rgb: rgb,
    "BGR": lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
    "RGBA": lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA),
    "I420": _rgb_to_i420,
    "NV12": _rgb_to_nv12,
    "YUYV": lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2).reshape(-1),
    "UYVY": lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY).reshape(-1),
}


class VirtualCamSink(FrameSink):
    def __init__(self, size: tuple[int, int], fps: float, device: str | None = None, backend: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise BrushstreamError("the virtual camera needs pyvirtualcam (pip install pyvirtualcam)") from None
        self._pyvirtualcam = pyvirtualcam
        try:
            probe = pyvirtualcam.Camera(size[0], size[1], fps, device=device, backend=backend)
        except Exception as exc:   # pyvirtualcam raises RuntimeError listing every backend's failure
            reason = " / ".join(str(exc).split("\n"))
            raise BrushstreamError(f"virtual camera: none available ({reason}); on Linux load v4l2loopback "
                                   f"(modprobe v4l2loopback exclusive_caps=1), elsewhere install OBS") from None
        native = probe.native_fmt
        self.format = native.name if native is not None and native.name in CONVERSIONS else "RGB"
        if self.format != "RGB":
            probe.close()
            self._cam = pyvirtualcam.Camera(size[0], size[1], fps, device=device, backend=backend,
                                            fmt=getattr(pyvirtualcam.PixelFormat, self.format))
        else:
            self._cam = probe
        self._convert = CONVERSIONS[self.format]
        self.name = f"virtual camera {self._cam.device} ({self._cam.backend}, {self.format})"

    def send(self, rgb: np.ndarray) -> None:
        self._cam.send(self._convert(np.ascontiguousarray(rgb)))

    def close(self) -> None:
        cam, self._cam = getattr(self, "_cam", None), None
        if cam is not None:
            cam.close()
