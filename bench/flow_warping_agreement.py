"""Does the warping-error figure depend on which flow grades it? (issue 10: FlowNet vs DIS within 20%).

For every clip in ../shared/data/video: stylize its first frames per frame and with the temporal state (the project's
flow-guided blend, DIS inside), then grade each output sequence, and the input clip itself (the floor), with Lai et
al.'s warping error (core/metrics.py) twice: with DIS medium flow and with FlowNet flow. Prints each figure and the
ratio flownet / dis.

    python bench/flow_warping_agreement.py --flownet flownetc_small --frames 20
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import STYLES, photo  # noqa: E402
from video_temporal import clips, output_blend  # noqa: E402

from brushstream.core.flow import get_flow  # noqa: E402
from brushstream.core.io.atomic import atomic_path  # noqa: E402
from brushstream.core.io.video import VideoReader  # noqa: E402
from brushstream.core.methods import build  # noqa: E402
from brushstream.core.metrics import WarpingError  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "flow_warping_agreement.json"


def grade(frames, outs, flow) -> dict:
    metric = WarpingError(flow)
    for f, o in zip(frames, outs):
        metric.update(f, o)
    return metric.summary()   # for the input sequence itself, output == input: its figure is the floor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flownet", default="flownetc_small", help="FlowNet weights (manifest name or file)")
    ap.add_argument("--method", default="adain")
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    ap.add_argument("-o", "--output", default=str(RESULTS))
    args = ap.parse_args()
    # One instance per backend for the whole run (loading FlowNet's weights is the start-up cost worth sharing).
    judges = {"dis": get_flow("dis", preset="medium"), "flownet": get_flow("flownet", weights=args.flownet)}
    model = build(args.method)
    code = model.encode_style(photo(STYLES / args.style, 512))
    rows = []
    for clip in clips():
        if args.clips and clip.stem not in args.clips.split(","):
            continue
        with VideoReader(clip, max_frames=args.frames) as reader:
            frames = [fr.image for fr in reader]
        with torch.inference_mode():
            raw = [model.stylize(f, code) for f in frames]
            sequences = {"input": frames, "per_frame": raw, "temporal": output_blend(frames, raw, 0.8, {"preset": "medium"})}
            for variant, outs in sequences.items():
                figures = {}
                for judge, flow in judges.items():
                    summary = grade(frames, outs, flow)
                    figures[judge] = summary["warping_error"]
                rows.append({"clip": clip.stem, "variant": variant, **figures, "ratio": figures["flownet"] / figures["dis"]})
                print(f"{clip.stem:<16} {variant:<10} dis {figures['dis'] * 1e4:8.2f}  flownet {figures['flownet'] * 1e4:8.2f}"
                      f"  ratio {rows[-1]['ratio']:.3f}", flush=True)
    ratios = [r["ratio"] for r in rows]
    within = sum(abs(r - 1) <= 0.2 for r in ratios)
    print(f"(x 1e-4) flownet/dis ratio: median {statistics.median(ratios):.3f}, min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}; {within} of {len(ratios)} within 20%")
    out = Path(args.output)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
