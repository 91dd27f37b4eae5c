"""A multi-style video network switching style mid-clip, with its stream state kept (what a host does when the user
picks another style) against the state reset at the switch (a cold start), on the shared clips.

    python bench/style_switch.py --model video_multistyle_8 --styles starry_night,mosaic --at 30 --frames 45

Per clip: the mean absolute frame-to-frame change of the output (0..1 units, x 1e-3) away from the switch (the
clip's own motion and flicker), at the switch frame, and over the three frames after it (a flash or a slow settling
shows there as change above the usual); and the mean distance of the three frames after the switch from the same
network run in the new style from the clip's start (its settled output), and that distance frame by frame to the
clip's end (how long the old style's memory lingers). Results: printed and
bench/results/style_switch.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from video_temporal import clips

from brushstream.core.io.atomic import atomic_path
from brushstream.core.io.video import VideoReader
from brushstream.core.methods import build

RESULTS = Path(__file__).resolve().parent / "results" / "style_switch.json"


def run(method, frames, codes, at: int, reset: bool) -> list[torch.Tensor]:
    state, outs = method.new_state(), []
    with torch.inference_mode():
        for t, frame in enumerate(frames):
            if t == at and reset:
                state = method.new_state()
            outs.append(method.stylize(frame, codes[t >= at], state=state))
    return outs


def change(outs, t) -> float:
    return (outs[t] - outs[t - 1]).abs().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="video_multistyle")
    ap.add_argument("--model", default="video_multistyle_8")
    ap.add_argument("--styles", default="starry_night,mosaic", help="FROM,TO style names of the model")
    ap.add_argument("--at", type=int, default=30, help="the first frame in the new style")
    ap.add_argument("--frames", type=int, default=45)
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    args = ap.parse_args()
    method = build(args.method, model=args.model)
    codes = [method.encode_style(name) for name in args.styles.split(",")]
    rows = {}
    print(f"{'clip':18s} {'mode':6s} {'usual':>7s} {'switch':>7s} {'after':>7s} {'to settled':>10s}   (x 1e-3)")
    for clip in clips():
        if args.clips and clip.stem not in args.clips.split(","):
            continue
        with VideoReader(clip, max_frames=args.frames) as reader:
            frames = [f.image for f in reader]
        settled = run(method, frames, [codes[1], codes[1]], args.at, reset=False)
        for mode in ("kept", "reset"):
            outs = run(method, frames, codes, args.at, reset=mode == "reset")
            usual = statistics.mean(change(outs, t) for t in range(1, len(outs)) if not args.at <= t <= args.at + 3)
            after = statistics.mean(change(outs, t) for t in range(args.at + 1, args.at + 4))
            distance = statistics.mean((outs[t] - settled[t]).abs().mean().item() for t in range(args.at + 1, args.at + 4))
            row = {"usual": usual, "switch": change(outs, args.at), "after": after, "to_settled": distance,
                   "settling": [(outs[t] - settled[t]).abs().mean().item() for t in range(args.at, len(outs))]}
            rows[f"{clip.stem}/{mode}"] = row
            print(f"{clip.stem:18s} {mode:6s} {usual * 1e3:7.2f} {row['switch'] * 1e3:7.2f} {after * 1e3:7.2f} "
                  f"{distance * 1e3:10.2f}", flush=True)
    for mode in ("kept", "reset"):
        picked = [r for k, r in rows.items() if k.endswith("/" + mode)]
        print(f"mean over clips, {mode}: " + ", ".join(f"{key} {statistics.mean(r[key] for r in picked) * 1e3:.2f}e-3"
                                                       for key in ("usual", "switch", "after", "to_settled")))
        curve = [statistics.mean(r["settling"][k] for r in picked) * 1e3 for k in range(len(picked[0]["settling"]))]
        print(f"  {mode}: distance to settled (x 1e-3) at the switch frame and each one after: "
              + " ".join(f"{d:.2f}" for d in curve))
    with atomic_path(RESULTS) as tmp:
        Path(tmp).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
