"""The sinks: the UDP MPEG-TS stream OBS plays (tags, colours, keyframes) and the virtual camera's formats."""
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from brushstream.core.errors import BrushstreamError
from brushstream.obs_filter.sinks import UdpStreamSink, VirtualCamSink

COLOUR = (200, 60, 30)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _receive(url: str, frames: int, result: dict):
    import av
    with av.open(url + "&timeout=5000000", format="mpegts") as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        decoded = []
        for frame in container.decode(stream):
            decoded.append(frame)
            if len(decoded) >= frames:
                break
        result.update(tags=(ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range),
                      keyframes=[i for i, f in enumerate(decoded) if f.key_frame], frames=decoded,
                      size=(ctx.width, ctx.height))


def _stream(sink: UdpStreamSink, pictures, wanted: int) -> dict:
    """Send ``pictures`` through ``sink`` while a PyAV player decodes the first ``wanted`` frames."""
    result = {}
    receiver = threading.Thread(target=_receive, args=(sink.player_url(), wanted, result))
    receiver.start()
    time.sleep(0.3)
    for picture in pictures:
        sink.send(picture)
        time.sleep(0.005)
    sink.close()
    receiver.join(10)
    return result


def test_the_stream_is_h264_tagged_bt709_limited_and_keeps_its_colours():
    port = _free_udp_port()
    sink = UdpStreamSink((320, 180), 30, port=port, flush_copies=0, timestamps="clock")
    image = np.zeros((180, 320, 3), np.uint8)
    image[:] = COLOUR
    result = _stream(sink, [image] * 120, 70)
    assert sink.player_url() == f"udp://127.0.0.1:{port}?localaddr=127.0.0.1"
    assert result["size"] == (320, 180)
    assert result["tags"] == (1, 1, 1, 1)          # BT.709 primaries, transfer, matrix; limited (MPEG) range
    # A keyframe at least every second (30 frames), so OBS joining late or restarting shows a picture quickly.
    gaps = np.diff(result["keyframes"])
    assert len(result["keyframes"]) >= 2 and gaps.max() <= 30
    frame = result["frames"][-1]
    as_709 = frame.to_ndarray(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG")[90, 160]
    as_601 = frame.to_ndarray(format="rgb24", src_colorspace="ITU601", src_color_range="MPEG")[90, 160]
    assert np.abs(as_709.astype(int) - COLOUR).max() <= 4
    assert np.abs(as_601.astype(int) - COLOUR).max() > 10    # the matrix matters: the tag is what makes it right


def test_flush_copies_and_asap_timestamps():
    port = _free_udp_port()
    sink = UdpStreamSink((320, 180), 30, port=port, flush_copies=2, timestamps="asap")
    result = _stream(sink, [np.full((180, 320, 3), 20 + (i * 30) % 200, np.uint8) for i in range(60)], 150)
    frames = result["frames"]
    seconds = np.array([float(f.pts * f.time_base) for f in frames])
    assert np.allclose(np.diff(seconds), 0.001)              # 1 ms apart: every frame is due on arrival
    pictures = [f.to_ndarray(format="rgb24").astype(int) for f in frames[3:12]]
    # Each real frame is followed by two copies of itself, then a new picture.
    same = [np.abs(a - b).mean() < 3 for a, b in zip(pictures, pictures[1:])]
    assert same.count(True) == 6 and same.count(False) == 2
    gaps = np.diff(result["keyframes"])
    assert len(gaps) == 0 or gaps.min() >= 89                # a keyframe per second of real frames, not of copies
    assert UdpStreamSink((64, 64), 30, port=port).flush_copies == min(__import__("os").cpu_count(), 16)


def test_odd_stream_sizes_are_refused():
    with pytest.raises(BrushstreamError, match="even"):
        UdpStreamSink((321, 180), 30, port=_free_udp_port())


# -- virtual camera through a registered test backend (no v4l2loopback here) ---------------------------------------
class RecordingCamera:
    """A pyvirtualcam backend that keeps what it is sent; ``NATIVE`` is the format it claims as native."""
    NATIVE = None
    sent: list = []
    formats: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        from pyvirtualcam.util import decode_fourcc
        self.width, self.height = width, height
        RecordingCamera.formats.append(decode_fourcc(fourcc))

    def send(self, frame):
        RecordingCamera.sent.append(frame.copy())

    def close(self):
        pass

    def device(self):
        return "/dev/test-camera"

    def native_fourcc(self):
        from pyvirtualcam.util import encode_fourcc
        return None if self.NATIVE is None else encode_fourcc(self.NATIVE)


def _to_rgb(data: np.ndarray, fmt: str, w: int, h: int) -> np.ndarray:
    if fmt == "I420":
        return cv2.cvtColor(data.reshape(h * 3 // 2, w), cv2.COLOR_YUV2RGB_I420)
    if fmt == "NV12":
        return cv2.cvtColor(data.reshape(h * 3 // 2, w), cv2.COLOR_YUV2RGB_NV12)
    if fmt == "UYVY":
        return cv2.cvtColor(data.reshape(h, w, 2), cv2.COLOR_YUV2RGB_UYVY)
    return data.reshape(h, w, 3)


@pytest.mark.parametrize("native,fourcc", [("I420", "I420"), ("NV12", "NV12"), ("UYVY", "UYVY"), (None, "raw ")])
def test_virtual_camera_gets_its_native_format(native, fourcc):
    import pyvirtualcam
    RecordingCamera.NATIVE, RecordingCamera.sent, RecordingCamera.formats = native, [], []
    pyvirtualcam.register_backend("brushstream-test", RecordingCamera)
    sink = VirtualCamSink((64, 48), 30, backend="brushstream-test")
    image = np.zeros((48, 64, 3), np.uint8)
    image[:] = COLOUR
    sink.send(image)
    sink.close()
    assert RecordingCamera.formats[-1] == fourcc            # the camera was opened in its own format
    assert sink.format == (native or "RGB")
    assert "/dev/test-camera" in sink.name
    back = _to_rgb(RecordingCamera.sent[-1], native or "RGB", 64, 48)
    assert np.abs(back[24, 32].astype(int) - COLOUR).max() <= 4


def test_no_virtual_camera_is_one_line():
    import pyvirtualcam

    class Absent(RecordingCamera):
        def __init__(self, **kw):
            raise RuntimeError("device not found\nsecond line")
    pyvirtualcam.register_backend("brushstream-absent", Absent)
    with pytest.raises(BrushstreamError, match="virtual camera: none available") as info:
        VirtualCamSink((64, 48), 30, backend="brushstream-absent")
    assert "\n" not in str(info.value)
