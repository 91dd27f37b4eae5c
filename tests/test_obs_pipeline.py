"""The live pipeline's plumbing: one-frame slots, the frame counter stamp, sources and the three threads."""
import threading
import time

import numpy as np
import pytest

from brushstream.core.errors import BrushstreamError
from brushstream.obs_filter.pipeline import LivePipeline
from brushstream.obs_filter.slots import LatestSlot
from brushstream.obs_filter.sources import FileSource, FrameSource, SourceLost, fit, open_source
from brushstream.obs_filter.stamp import read_stamp, stamp

from .conftest import SHARED_DATA

CLIP = SHARED_DATA / "video" / "sam2_coffee.mp4"


# -- slots -------------------------------------------------------------------------------------------------------
def test_slot_keeps_only_the_newest_and_counts_what_it_dropped():
    slot = LatestSlot()
    assert slot.put(1) and not slot.put(2) and not slot.put(3)
    assert slot.dropped == 2
    assert slot.take(timeout=0) == 3
    assert slot.take(timeout=0.01) is None


def test_slot_take_waits_for_a_put_and_close_releases_waiters():
    slot = LatestSlot()
    threading.Timer(0.05, slot.put, args=("late",)).start()
    assert slot.take(timeout=2) == "late"
    got = []
    waiter = threading.Thread(target=lambda: got.append(slot.take(timeout=None)))   # waits for ever unless closed
    waiter.start()
    slot.close()
    waiter.join(60)                              # a deadlock guard, not a timing: close must wake the waiter
    assert not waiter.is_alive() and got == [None]


class VirtualClock:
    """perf_counter and sleep for the code under test: sleeping advances the clock at once, so pacing is counted
    exactly and a busy machine changes nothing."""

    def __init__(self):
        self.now, self.slept = 1000.0, []

    def perf_counter(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def _virtual_clock(monkeypatch, *modules) -> VirtualClock:
    import types
    clock = VirtualClock()
    for module in modules:
        monkeypatch.setattr(module, "time", types.SimpleNamespace(perf_counter=clock.perf_counter, sleep=clock.sleep,
                                                                  monotonic=clock.perf_counter, time=clock.perf_counter))
    return clock


# -- stamp -------------------------------------------------------------------------------------------------------
def _h264_round_trip(frames):
    """Encode RGB frames with x264 as the stream sink does, decode them again."""
    import io

    import av
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mpegts") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    buffer.seek(0)
    with av.open(buffer) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def test_stamp_survives_h264_and_a_quarter_size_screenshot():
    import cv2
    rng = np.random.default_rng(0)
    counters = [0, 1, 777, 2 ** 20 - 1, 123456]
    frames = [stamp((rng.random((360, 640, 3)) * 255).astype(np.uint8), c) for c in counters]
    for counter, decoded in zip(counters, _h264_round_trip(frames)):
        small = cv2.resize(decoded, (320, 180), interpolation=cv2.INTER_AREA)
        assert read_stamp(decoded, 640) == counter
        assert read_stamp(small, 640) == counter


def test_an_unstamped_or_blended_frame_reads_as_no_stamp():
    rng = np.random.default_rng(1)
    assert read_stamp((rng.random((360, 640, 3)) * 255).astype(np.uint8), 640) is None
    a, b = stamp(np.zeros((360, 640, 3), np.uint8), 5), stamp(np.zeros((360, 640, 3), np.uint8), 10)
    blend = ((a.astype(int) + b) // 2).astype(np.uint8)   # a frame caught between two stamps
    assert read_stamp(blend, 640) is None
    flipped = a.copy()                                     # one bit block overwritten (say, by an overlay)
    flipped[:16, 5 * 16:6 * 16] = 235 if flipped[8, 5 * 16 + 8, 0] < 128 else 16
    assert read_stamp(a, 640) == 5 and read_stamp(flipped, 640) is None
    with pytest.raises(ValueError):
        stamp(np.zeros((8, 40, 3), np.uint8), 1)


# -- sources -----------------------------------------------------------------------------------------------------
def test_fit_covers_the_size_and_crops_the_centre():
    image = np.zeros((100, 400, 3), np.uint8)
    image[:, 150:250] = 255                      # a white centre band, 1/4 of the width
    out = fit(image, (100, 100))
    assert out.shape == (100, 100, 3)
    assert out[:, 0].mean() == 255 and out[:, -1].mean() == 255   # the centre of a wide frame is kept
    assert fit(image, (400, 100)) is image


def test_file_source_loops_paces_and_fits(monkeypatch):
    source = FileSource(CLIP, (320, 180), fps=100.0)
    assert source.fps == pytest.approx(30000 / 1001)   # never faster than the clip's own rate
    source = FileSource(CLIP, (320, 180), fps=1000.0)
    source.fps = 400.0                                 # fast, for the test: 100 frames past the 90-frame clip's end
    frames = [source.read() for _ in range(100)]
    assert all(f.shape == (180, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert np.abs(frames[90].astype(int) - frames[0]).mean() < 1   # it looped back to the first frame
    from brushstream.obs_filter import sources
    clock = _virtual_clock(monkeypatch, sources)
    source = FileSource(CLIP, (320, 180), fps=20.0)
    began = clock.now
    for _ in range(6):
        source.read()
    assert clock.now - began == pytest.approx(5 / 20)     # real-time playback: paced to 20 fps, not decoding speed


def test_bad_sources_are_one_line_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(BrushstreamError, match="empty.mp4"):
        open_source(str(empty), (320, 180), 30)
    with pytest.raises(BrushstreamError, match="no such file"):
        open_source(str(tmp_path / "absent.mp4"), (320, 180), 30)
    with pytest.raises(BrushstreamError, match="camera:N"):
        open_source("camera:front", (320, 180), 30)
    with pytest.raises(BrushstreamError, match="needs the obs-websocket"):
        open_source("obs:Camera", (320, 180), 30)


def test_a_camera_that_cannot_open_is_one_line():
    from brushstream.obs_filter.sources import CameraSource

    class Closed:
        def isOpened(self):
            return False
    with pytest.raises(BrushstreamError, match="camera:3: cannot open"):
        CameraSource(3, (320, 180), 30, capture=lambda index: Closed())


# -- the three threads -------------------------------------------------------------------------------------------
class CountingSource(FrameSource):
    """Frames whose pixel value is their number; ``lose`` makes reads fail for a while."""

    def __init__(self, fps=200.0, lose_at=None, lose_for=3):
        self.n, self.fps, self.name, self.lose_at, self.lose_for, self.reopens = 0, fps, "counting", lose_at, \
            lose_for, 0

    def read(self):
        if self.lose_at is not None and self.lose_at <= self.n < self.lose_at + self.lose_for:
            self.n += 1
            raise SourceLost("counting: gone")
        time.sleep(1 / self.fps)
        self.n += 1
        return np.full((64, 96, 3), self.n % 256, np.uint8)

    def reopen(self):
        self.reopens += 1


class SlowStylizer:
    def __init__(self, seconds):
        self.seconds, self.seen, self.current = seconds, [], type("Slot", (), {"label": "slow"})()

    def warm(self, frame):
        pass

    def __call__(self, rgb):
        self.seen.append(int(rgb[0, 0, 0]))
        time.sleep(self.seconds)
        return 255 - rgb


class ListSink:
    name = "list"

    def __init__(self, fail_every=0):
        self.frames, self.fail_every, self.calls = [], fail_every, 0

    def send(self, rgb):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise OSError("send failed")
        self.frames.append(rgb)

    def close(self):
        pass


def _run(pipeline: LivePipeline, seconds: float) -> LivePipeline:
    pipeline.start()
    try:
        pipeline.wait(seconds)
    finally:
        pipeline.stop()
    return pipeline


def test_a_slow_stylizer_drops_stale_frames_instead_of_queueing_them():
    source, stylizer, sink = CountingSource(fps=200), SlowStylizer(0.03), ListSink()
    pipeline = _run(LivePipeline(source, stylizer, sink), 1.0)
    figures = pipeline.stats.snapshot()
    assert figures["dropped_capture"] > 50              # the source made ~6x what the stylizer could take
    assert len(sink.frames) == figures["frames"] > 10
    # No backlog: each frame stylized was at most a couple of frames old, and they only move forward.
    assert all(b > a for a, b in zip(stylizer.seen[1:], stylizer.seen[2:]))
    # Counted: every frame the source made was either stylized or dropped (the last may be in flight).
    assert 0 <= source.n - figures["frames"] - figures["dropped_capture"] <= 2


def test_a_fast_stylizer_keeps_every_frame():
    source, stylizer, sink = CountingSource(fps=50), SlowStylizer(0.002), ListSink()
    pipeline = _run(LivePipeline(source, stylizer, sink), 1.0)
    figures = pipeline.stats.snapshot()
    assert figures["dropped_capture"] == 0 and figures["dropped_output"] == 0
    assert stylizer.seen == list(range(1, len(stylizer.seen) + 1))   # the warm-up frame is sent first, then 2, 3...


def test_a_lost_source_is_retried_and_the_stream_goes_on():
    source, stylizer, sink = CountingSource(fps=100, lose_at=20), SlowStylizer(0.001), ListSink()
    _run(LivePipeline(source, stylizer, sink), 3.0)
    assert source.reopens >= 1
    assert max(stylizer.seen) > 40     # frames after the loss arrived


def test_sink_errors_are_counted_and_do_not_stop_the_stream():
    source, stylizer, sink = CountingSource(fps=100), SlowStylizer(0.001), ListSink(fail_every=3)
    pipeline = _run(LivePipeline(source, stylizer, sink), 0.6)
    assert pipeline.stats.sink_errors >= 5 and len(sink.frames) >= 10


def test_a_failing_stage_stops_the_pipeline_and_wait_raises_it():
    class Broken(SlowStylizer):
        def __call__(self, rgb):
            if rgb[0, 0, 0] == 5:
                raise RuntimeError("stylizer broke")
            return rgb
    pipeline = LivePipeline(CountingSource(fps=100), Broken(0), ListSink())
    pipeline.start()
    with pytest.raises(RuntimeError, match="stylizer broke"):
        pipeline.wait(5)
    pipeline.stop()


def test_overlay_and_stamp_are_drawn_into_the_output():
    sink = ListSink()
    # Frames 50 ms apart: the pipeline drops a frame a newer one overtakes (by design), which at 10 ms apart a
    # loaded machine did to frame 0; this test is about the stamps, not the dropping.
    pipeline = _run(LivePipeline(CountingSource(fps=20), SlowStylizer(0.001), sink, stamp_frames=True), 0.6)
    stamps = [read_stamp(f, 96 * 1) for f in sink.frames[:5]]
    assert stamps == sorted(stamps) and stamps[0] == 0 and None not in stamps
    assert set(range(len(sink.frames))) >= set(pipeline.sent_at)
    plain = ListSink()
    _run(LivePipeline(CountingSource(fps=100), SlowStylizer(0.001), plain, overlay=True), 0.3)
    # The overlay writes white text along the bottom: the frames are no longer one flat value there.
    assert any(f[-20:].std() > 10 for f in plain.frames)


class FakeCamera:
    """A camera that delivers 60 fps whatever it is asked, each frame's pixels holding its number."""

    def __init__(self, index):
        self.n, self.settings = 0, {}

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.settings[prop] = value

    clock = None

    def grab(self):
        self.clock.sleep(1 / 60)      # a frame every 1/60 s of the virtual clock
        self.n += 1
        return True

    def retrieve(self):
        return True, np.full((120, 160, 3), self.n % 256, np.uint8)

    def release(self):
        pass


def test_a_camera_faster_than_the_target_is_held_to_the_target_fps(monkeypatch):
    import cv2

    from brushstream.obs_filter import sources
    from brushstream.obs_filter.sources import CameraSource
    FakeCamera.clock = _virtual_clock(monkeypatch, sources)
    camera = CameraSource(0, (320, 180), 20, capture=FakeCamera)
    assert camera._cam.settings[cv2.CAP_PROP_FPS] == 20 and camera._cam.settings[cv2.CAP_PROP_FRAME_WIDTH] == 320
    numbers = [int(camera.read()[0, 0, 0]) for _ in range(8)]
    assert numbers[0] == 1
    assert numbers == [1, 3, 6, 9, 12, 15, 18, 21]    # 60 fps in, 20 fps out: every third frame, due to the tick
    assert camera.read().shape == (180, 320, 3)


def test_the_overlay_shows_the_figures_refreshed_twice_a_second(monkeypatch):
    from brushstream.obs_filter import stats as stats_module
    from brushstream.obs_filter.stats import FrameTimes, LiveStats
    clock = _virtual_clock(monkeypatch, stats_module)
    stats = LiveStats()
    empty = stats.overlay(np.zeros((180, 320, 3), np.uint8), "udnie")      # no frames yet: 0.0 fps
    for i in range(30):
        stats.record(FrameTimes(i, i / 30, i / 30 + 0.001, i / 30 + 0.002, i / 30 + 0.02, sent=i / 30 + 0.025))
    cached = stats.overlay(np.zeros((180, 320, 3), np.uint8), "udnie")
    assert np.array_equal(empty, cached)            # within half a second the figures are not recomputed
    clock.sleep(0.55)
    fresh = stats.overlay(np.zeros((180, 320, 3), np.uint8), "udnie")
    assert not np.array_equal(cached, fresh)        # then they show the new window (30 fps, 25 ms)
