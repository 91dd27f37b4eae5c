"""One network alone in its process, fed frames spaced out as a stream would: the per-frame time a host sees.

    python bench/stream_alone.py --method reconet --model reconet_rt_starry_night --runtime onnx [--size 640x360]

feedforward_speed.py runs several networks (and the peer's ONNX session) side by side in one process, which
is right for ratios but costs each ONNX Runtime session some time to the others' threads; this is the figure
for one stream. Median of ``--frames`` warm frames, 20 ms apart.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from brushstream.core.methods import build


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="reconet")
    ap.add_argument("--model", default="reconet_rt_starry_night")
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    method = build(args.method, model=args.model, runtime=args.runtime)
    code = method.encode_style(0)
    frame = torch.rand(1, 3, h, w)
    for _ in range(3):
        method.stylize(frame, code)
    times = []
    for _ in range(args.frames):
        time.sleep(0.02)
        start = time.perf_counter()
        method.stylize(frame, code)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(f"{args.method} {args.model} runtime {args.runtime} (ran {method.runner.chosen}) {args.size}: "
          f"{median * 1e3:.1f} ms median, {1 / median:.1f} fps, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
