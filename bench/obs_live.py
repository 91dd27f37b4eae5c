"""The live filter's figures: sustained fps, per-stage latency, dropped frames, end-to-end latency into a real OBS,
style switches, and memory over a long run.

    python bench/obs_live.py [--seconds 120] [--switch-every 15] [--memory-frames 10000] [--no-obs]
        [--run reconet] [--run lst] [--run lst:256] [--out bench/results/obs_live.json]

Live runs (``--run METHOD[:WORK_SIZE]``): a 29.97 fps 640x360 clip (sam2_coffee, looped, played in real time) ->
stylizer -> H.264 MPEG-TS on UDP -> OBS's Media Source (OBS headless under Xvfb, host_tests/obs_host.py), all on
this machine's CPU. Figures per 10 s window; the style steps to the next every ``--switch-every`` seconds and the
frames around each switch are compared with the run's median. End-to-end latency uses the frame counter method:
every frame carries a stamp; twice a second a screenshot of the OBS source is read, and the frame it shows was
captured ``t_screenshot - capture_start`` ago (t_screenshot: the middle of the request's round trip).

Memory run: ReCoNet fed as fast as it goes (frames decoded once, then cycled, no pacing) into the real stream sink,
``--memory-frames`` frames, the process's RSS sampled every 500 frames.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host_tests"))

from brushstream.core.io.image import to_uint8  # noqa: E402
from brushstream.core.io.video import VideoReader  # noqa: E402
from brushstream.obs_filter.control import ObsControl, ObsSettings  # noqa: E402
from brushstream.obs_filter.pipeline import LivePipeline  # noqa: E402
from brushstream.obs_filter.sinks import UdpStreamSink  # noqa: E402
from brushstream.obs_filter.sources import FileSource, FrameSource  # noqa: E402
from brushstream.obs_filter.stamp import read_stamp  # noqa: E402
from brushstream.obs_filter.stylizer import LiveStylizer  # noqa: E402

DATA = REPO.parent / "shared" / "data"
CLIP = DATA / "video" / "sam2_coffee.mp4"
SIZE = (640, 360)
RECONET_STYLES = ["starry_night", "the_great_wave", "composition_vii"]
LST_STYLES = [str(DATA / "styles" / f"{s}.jpg") for s in RECONET_STYLES]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20


def stylizer_for(run: str) -> LiveStylizer:
    method, _, work = run.partition(":")
    if method == "reconet":
        return LiveStylizer("reconet", RECONET_STYLES, options={"norm": "frame"})
    return LiveStylizer("lst", LST_STYLES, options={"work_size": int(work or 384)})


class LatencyProbe(threading.Thread):
    """Reads the stamp OBS shows, twice a second."""

    def __init__(self, obs, pipeline: LivePipeline, input_name: str):
        super().__init__(daemon=True)
        self.obs, self.pipeline, self.input_name = obs, pipeline, input_name
        self.samples: list[float] = []       # ms from capture to the middle of the screenshot's round trip
        self.round_trips: list[float] = []   # ms the screenshot request took (the uncertainty of each sample)
        self.unreadable = 0
        self.stop = threading.Event()

    def run(self):
        import base64

        import cv2
        client = self.obs.client()
        while not self.stop.wait(0.5):
            began = time.perf_counter()
            shot = client.get_source_screenshot(self.input_name, "jpg", SIZE[0], SIZE[1], 95)
            ended = time.perf_counter()
            image = cv2.imdecode(np.frombuffer(base64.b64decode(shot.image_data.split(",", 1)[-1]), np.uint8),
                                 cv2.IMREAD_COLOR)
            counter = read_stamp(image[..., ::-1], SIZE[0])
            times = self.pipeline.sent_at.get(counter) if counter is not None else None
            if times is None:
                self.unreadable += 1
                continue
            self.samples.append(((began + ended) / 2 - times.capture_start) * 1000)
            self.round_trips.append((ended - began) * 1000)
        client.disconnect()


def _window_ratios(frames: list, i: int, median_stylize: float, median_interval: float) -> tuple[float, float]:
    """The slowest stylize time and the longest gap between sent frames among frames i-2..i+2, over the medians."""
    lo, hi = max(i - 2, 1), min(i + 3, len(frames))
    stylize = max(f.stylize_end - f.stylize_start for f in frames[lo:hi]) / median_stylize
    gap = max(frames[j].sent - frames[j - 1].sent for j in range(lo, hi)) / median_interval
    return stylize, gap


def switch_figures(frames: list, median_stylize: float, median_interval: float) -> dict:
    """Each switch: the first frame in the new style (its stylize time over the median) and the worst of the five
    frames around it; and, as the yardstick, the same five-frame figure at every ordinary frame of the run (a
    shared 2-core machine with OBS rendering has hiccups that have nothing to do with switching)."""
    switches, ordinary = [], []
    for i in range(1, len(frames)):
        stylize, gap = _window_ratios(frames, i, median_stylize, median_interval)
        if frames[i].style != frames[i - 1].style:
            own = (frames[i].stylize_end - frames[i].stylize_start) / median_stylize
            switches.append({"at_frame": i, "to": frames[i].style, "switch_frame_ratio": round(own, 2),
                             "window_stylize_ratio": round(stylize, 2), "window_interval_ratio": round(gap, 2)})
        else:
            ordinary.append(stylize)
    ordinary = np.array(ordinary)
    return {"switches": switches,
            "ordinary_window_stylize_ratio_p50_p95": [round(float(np.median(ordinary)), 2),
                                                     round(float(np.percentile(ordinary, 95)), 2)],
            "ordinary_windows_over_2x": round(float((ordinary > 2).mean()), 3),
            "median_stylize_ms": round(median_stylize * 1000, 1)}


def live_run(run: str, seconds: float, switch_every: float, obs) -> dict:
    stylizer = stylizer_for(run)
    source = FileSource(CLIP, SIZE, 30.0)
    sink = UdpStreamSink(SIZE, source.fps, port=5600 + hash(run) % 300)
    frames: list = []
    pipeline = LivePipeline(source, stylizer, sink, stamp_frames=True, on_frame=frames.append,
                            stats_window=100_000)
    control = probe = None
    if obs is not None:
        control = ObsControl(ObsSettings("127.0.0.1", obs.port, obs.password, input_name="Brushstream"), stylizer,
                             sink.player_url()).start()
        control.connected.wait(30)
    warm = pipeline.start()
    if obs is not None:
        probe = LatencyProbe(obs, pipeline, "Brushstream")
        probe.start()
    began, windows, memory = time.perf_counter(), [], []
    next_switch = switch_every
    while (elapsed := time.perf_counter() - began) < seconds:
        pipeline.wait(min(1.0, seconds - elapsed))
        elapsed = time.perf_counter() - began
        if elapsed >= next_switch:
            stylizer.step(+1)
            next_switch += switch_every
        if int(elapsed) % 10 == 0 and (not windows or windows[-1][0] != int(elapsed)):
            windows.append((int(elapsed), len(frames)))
            memory.append(round(rss_mb(), 1))
    if probe is not None:
        probe.stop.set()
        probe.join(5)
    if control is not None:
        control.stop()
    pipeline.stop()
    stats = pipeline.stats.snapshot()
    sent = [f.sent for f in frames]
    per_window = [round((b[1] - a[1]) / (b[0] - a[0]), 1) for a, b in zip(windows, windows[1:]) if b[0] > a[0]]
    stylize = [f.stylize_end - f.stylize_start for f in frames]
    intervals = np.diff(sent)
    figures = {
        "run": run, "seconds": round(sent[-1] - sent[0], 1), "frames": len(frames), "warm_up_s": round(warm, 2),
        "source_fps": round(source.fps, 2), "fps": round((len(frames) - 1) / (sent[-1] - sent[0]), 2),
        "fps_per_10s_window": per_window, "fps_min_window": min(per_window) if per_window else None,
        "dropped_capture": stats["dropped_capture"], "dropped_output": stats["dropped_output"],
        "sink_errors": stats["sink_errors"],
        "stage_ms": {k.removesuffix("_ms_p50"): [round(stats[k], 1), round(stats[k.replace("p50", "p95")], 1)]
                     for k in stats if k.endswith("_ms_p50")},
        "switching": switch_figures(frames, statistics.median(stylize), float(np.median(intervals))),
        "rss_mb_every_10s": memory,
    }
    if probe is not None:
        figures["obs_end_to_end_ms"] = {"median": round(statistics.median(probe.samples), 1),
                                        "p95": round(float(np.percentile(probe.samples, 95)), 1),
                                        "samples": len(probe.samples), "unreadable": probe.unreadable}
    return figures


class CycledFrames(FrameSource):
    """Decoded frames of the clip, cycled at 200 fps: faster than the stylizer, so the pipeline runs flat out (a
    source with no wait at all would spin and starve the other threads of the GIL, which no real source does)."""

    def __init__(self):
        self.name, self.fps = "sam2_coffee (cycled)", 200.0
        self.frames = [to_uint8(f.image) for f in VideoReader(CLIP, size=SIZE)]
        self.n = 0

    def read(self):
        time.sleep(1 / self.fps)
        self.n += 1
        return self.frames[self.n % len(self.frames)]


def memory_run(frames_wanted: int) -> dict:
    stylizer = stylizer_for("reconet")
    sink = UdpStreamSink(SIZE, 30.0, port=5999)
    samples = []

    def on_frame(times):
        if pipeline.stats.sent % 500 == 0:
            samples.append((pipeline.stats.sent, round(rss_mb(), 1)))
    pipeline = LivePipeline(CycledFrames(), stylizer, sink, on_frame=on_frame)
    pipeline.start()
    began = time.perf_counter()
    switch = 0
    while pipeline.stats.sent < frames_wanted:
        pipeline.wait(1.0)
        if int(time.perf_counter() - began) // 20 > switch:   # switch styles now and then, as a show would
            switch += 1
            stylizer.step(+1)
    pipeline.stop()
    after_warm = [rss for n, rss in samples if n >= 1000]
    return {"frames": pipeline.stats.sent, "seconds": round(time.perf_counter() - began, 1),
            "rss_mb_every_500_frames": samples,
            "rss_mb_growth_after_1000_frames": round(after_warm[-1] - after_warm[0], 1) if after_warm else None,
            "fps_unpaced": round(pipeline.stats.sent / (time.perf_counter() - began), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", help="reconet, lst or lst:WORK_SIZE (default: reconet and lst)")
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--switch-every", type=float, default=15.0)
    p.add_argument("--memory-frames", type=int, default=10_000, help="0: no memory run")
    p.add_argument("--no-obs", action="store_true", help="no OBS: the stream goes to a port nobody plays")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "obs_live.json"))
    args = p.parse_args()
    results = {"machine": f"{__import__('os').cpu_count()} CPU cores", "clip": CLIP.name, "size": list(SIZE),
               "runs": [], "memory": None}
    obs = None
    if not args.no_obs:
        from obs_host import ObsStudio
        obs = ObsStudio().start()
    out = Path(args.out)
    try:
        for run in args.run or ["reconet", "lst"]:
            figures = live_run(run, args.seconds, args.switch_every, obs)
            results["runs"].append(figures)
            print(json.dumps(figures), flush=True)
            out.write_text(json.dumps(results, indent=1) + "\n")   # each run kept as soon as it is done
    finally:
        if obs is not None:
            obs.stop()
    if args.memory_frames:
        results["memory"] = memory_run(args.memory_frames)
        print(json.dumps(results["memory"]), flush=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
