"""Video speed and memory: frames per second with and without the temporal state, the flow's own cost,
and peak memory against clip length (it must stay flat: frames stream through).

    python bench/video_speed.py [--method adain] [--frames 30] [--rounds 3] [--long 2000] [--long-height 180]
        [--skip-memory] [--results bench/results/video_speed.txt]

1. fps at 640x360 on ../shared/data/video/sam2_dog.mp4 through ``brushstream.stylize_video`` (decode,
   stylize, encode; model loading excluded, as in the CLI's 'done:' line), --no-temporal and temporal
   interleaved round by round; median and spread, and the ratio in the same process.
2. The flow's cost per frame at 640x360 (two DIS flows + Ruder's mask, what the state adds), per preset/scale.
3. Peak resident memory of `brushstream video` in a child process (VmHWM) on the first 200 and all
   N frames of an N-frame clip (sam2_dog played back and forth, so there is no scene cut).
Results: printed, and bench/results/video_speed.txt.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import torch
from common import SHARED, STYLES

import brushstream
from brushstream.core.flow import get_flow
from brushstream.core.io.video import VideoReader
from brushstream.core.ops.warp import reliable_flow_mask

CLIP = SHARED / "data" / "video" / "sam2_dog.mp4"
RESULTS = Path(__file__).resolve().parent / "results" / "video_speed.txt"


def _peak_mb_child(args: list[str]) -> float:
    """Run `brushstream video` in a child that reports its own VmHWM (peak RSS) at exit."""
    code = ("import sys, atexit\n"
            "def peak():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            print('PEAK_KB', line.split()[1], file=sys.stderr)\n"
            "atexit.register(peak)\n"
            "from brushstream.core.cli import main\n"
            f"sys.exit(main({args!r}))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    kb = [line.split()[1] for line in run.stderr.splitlines() if line.startswith("PEAK_KB")]
    return int(kb[-1]) / 1024


def _long_clip(path: Path, frames: int, height: int) -> None:
    """sam2_dog forwards then backwards, repeated: a continuous shot of any length."""
    with VideoReader(CLIP, size=None) as r:
        w, h = r.info.width, r.info.height
    width = round(w * height / h / 2) * 2
    with VideoReader(CLIP, size=(width, height)) as r:
        pics = [(f.image[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8") for f in r]
    loop = pics + pics[-2:0:-1]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(30), options={"preset": "ultrafast", "crf": "23"})
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(loop[i % len(loop)], format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="adain")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--long", type=int, default=2000)
    ap.add_argument("--long-height", type=int, default=180)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--results", default=str(RESULTS))
    args = ap.parse_args()
    torch.set_num_threads(2)
    style = str(STYLES / "starry_night.jpg")
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads, method {args.method}, "
             f"{CLIP.name} at 640x360, first {args.frames} frames"]
    model = brushstream.load(args.method)
    if not model.capabilities.arbitrary_style:   # a trained-styles method takes the style's name
        style = "starry_night"
    fps = {"per-frame": [], "temporal": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):            # round 0 warms up (first-call allocations, thread pools)
            for label, temporal in (("per-frame", False), ("temporal", True)):
                res = brushstream.stylize_video(CLIP, style, Path(tmp) / f"{label}.mp4", method=model,
                                                temporal=temporal, max_frames=args.frames)
                if r:
                    fps[label].append(res.fps)
    for label, values in fps.items():
        lines.append(f"{label:10s} fps median {statistics.median(values):.2f} "
                     f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")
    ratio = statistics.median(fps["temporal"]) / statistics.median(fps["per-frame"])
    lines.append(f"temporal / per-frame speed: {ratio:.2f}x")

    with VideoReader(CLIP, max_frames=11) as r:
        frames = [f.image for f in r]
    for preset, scale in (("medium", 1.0), ("medium", 0.5), ("fast", 1.0), ("fast", 0.5), ("ultrafast", 0.5)):
        flow = get_flow("dis", preset=preset, scale=scale)
        flow(frames[0], frames[1])
        began = time.perf_counter()
        for a, b in zip(frames, frames[1:]):
            reliable_flow_mask(flow(b, a), flow(a, b))
        ms = (time.perf_counter() - began) / (len(frames) - 1) * 1000
        lines.append(f"flow + mask per frame at 640x360, DIS {preset:9s} scale {scale}: {ms:6.1f} ms")

    if not args.skip_memory:
        with tempfile.TemporaryDirectory() as tmp:
            clip = Path(tmp) / "long.mp4"
            _long_clip(clip, args.long, args.long_height)
            for n in (200, args.long):
                peak = _peak_mb_child(["video", str(clip), "--style", style, "--method", args.method,
                                       "--max-frames", str(n), "-q", "-o", str(Path(tmp) / f"out{n}.mp4")])
                lines.append(f"peak RSS, {n:5d} frames at {args.long_height}p, temporal on: {peak:7.1f} MB")
    print("\n".join(lines))
    results = Path(args.results)
    results.parent.mkdir(exist_ok=True)
    results.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
