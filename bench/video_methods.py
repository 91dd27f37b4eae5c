"""The streaming methods on every clip in ../shared/data/video: warping error and style distance, against
per-frame AdaIN (issue 8's goals).

    python bench/video_methods.py [--frames 60] [--style starry_night.jpg]
        [--entry adain --entry lst --entry lst+state --entry reconet=FILE ...] [--report]

An entry is ``LABEL``, ``LABEL=MODEL`` or ``LABEL=MODEL?OPTION=VALUE&...`` (method options, e.g.
``reconet_framenorm=reconet_rt_starry_night?norm=frame``): the method is the label's part before "+" (a registered
name, else its part before "_"); "+state" runs the method with the product's flow-guided temporal state
(``stylize(state=...)``); "+alone" runs a video-native method without a stream state (what ``--no-temporal`` does:
its per-frame baseline). Each clip's first N frames
(the frames ReCoNet training never sees) go through each entry in order, one frame at a time, with one style code
per clip (LST's video mode: the style matrix is computed once). Warping error (Lai et al. 2018) is graded with
Farneback flow, beside the input clip's own (the floor); "excess" = output error - floor. The goals read:
LST and ReCoNet excess <= 40% of per-frame AdaIN's on the clips where AdaIN's excess is real (per-frame
over floor >= 1.2), and ReCoNet with temporal losses <= half the excess of the same network trained without
them, at <= 10% worse Gram distance. Gram distance: VGG16, every 10th frame. Results: printed and
bench/results/video_methods.json (rows keyed clip/label, merged with earlier runs).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from common import STYLES, photo
from video_temporal import clips, output_blend

from brushstream.core.flow import get_flow
from brushstream.core.io.video import VideoReader
from brushstream.core.methods import available, build
from brushstream.core.metrics import QualityMetrics, WarpingError

RESULTS = Path(__file__).resolve().parent / "results" / "video_methods.json"
DEFAULT_ENTRIES = ("adain", "lst", "lst+state")
REAL_EXCESS = 1.2


class CachedFlow:
    """The judge's flow between two input frames, computed once per clip for all entries (the frames are the
    same tensors for every entry, so their storage identifies the pair)."""

    def __init__(self, name: str = "farneback"):
        self.backend, self.cache = get_flow(name), {}

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        key = (a.data_ptr(), b.data_ptr(), tuple(a.shape))
        if key not in self.cache:
            self.cache[key] = self.backend(a, b)
        return self.cache[key]


def warping(frames, outs, judge: CachedFlow) -> dict:
    metric = WarpingError(judge)
    for f, o in zip(frames, outs):
        metric.update(f, o)
    return metric.summary()


def parse_entry(text: str) -> tuple[str, str, dict, bool]:
    label, _, rest = text.partition("=")
    model, _, extra = rest.partition("?")
    base = label.split("+")[0]
    method = base if base in available() else base.split("_")[0]
    options = {"model": model} if model else {}
    options.update(item.split("=", 1) for item in extra.split("&") if item)
    return label, method, options, "+state" in label


def run(entries, frames_n, style_name, chosen, threads, results: Path):
    style = photo(STYLES / style_name, 512)
    qm = QualityMetrics()
    targets = qm.style_targets(style)
    rows = json.loads(results.read_text()) if results.exists() else {}
    models = {}
    for clip in chosen:
        with VideoReader(clip, max_frames=frames_n) as reader:
            frames = [fr.image for fr in reader]
        judge = CachedFlow("farneback")
        per_frame = {}
        for text in entries:
            label, method, options, stateful = parse_entry(text)
            key = (method, tuple(sorted(options.items())))   # "lst" and "lst+state" share one network
            if key not in models:
                models[key] = build(method, **options)
            model = models[key]
            code = model.encode_style(style if model.capabilities.arbitrary_style else 0)
            alone = "+alone" in label   # a video-native method without its stream state: its per-frame baseline
            state = model.new_state(temporal_strength=0.8 if stateful else None) if stateful or \
                (model.capabilities.video_native and not alone) else None
            base = label.split("+")[0]
            began = time.perf_counter()
            if stateful and base in per_frame and not model.capabilities.video_native:
                # The same per-frame outputs through the product's StreamState (begin_frame -> stabilise ->
                # end_frame, what stylize(state=...) does for an image method): the method runs once per clip.
                outs = output_blend(frames, per_frame[base], 0.8, {})
            else:
                with torch.inference_mode():
                    outs = [model.stylize(f, code, state=state) for f in frames]
            if not stateful:
                per_frame[label] = outs
            seconds = (time.perf_counter() - began) / len(frames)
            w = warping(frames, outs, judge)
            gram = statistics.mean(qm.style_distance(o, targets)["gram"] for o in outs[::10])
            floor = w["input_warping_error"]
            row = {"clip": clip.stem, "label": label, "method": method, "options": options, "state": stateful,
                   "frames": len(frames), "warping_error": w["warping_error"], "floor": floor,
                   "excess": w["warping_error"] - floor, "over_floor": w["warping_error"] / floor, "gram": gram,
                   "s_per_frame": seconds, "threads": threads, "style": style_name}
            rows[f"{clip.stem}/{label}"] = row
            print(f"{clip.stem:18s} {label:28s} warp {row['warping_error'] * 1e4:7.2f}e-4 floor {floor * 1e4:6.2f}e-4 "
                  f"x{row['over_floor']:5.2f} excess {row['excess'] * 1e4:7.2f}e-4 gram {gram:.4f} "
                  f"{seconds * 1e3:6.0f} ms/frame", flush=True)
            results.parent.mkdir(exist_ok=True)
            results.write_text(json.dumps(rows, indent=1))
    return rows


def report(rows: dict, baseline: str = "adain", pairs: list[tuple[str, str]] = ()) -> None:
    """Each entry's excess as a share of per-frame AdaIN's on the clips where AdaIN's excess is real, and each
    (temporal, control) pair's excess ratio and Gram change."""
    labels = sorted({r["label"] for r in rows.values()})
    by_clip = {}
    for r in rows.values():
        by_clip.setdefault(r["clip"], {})[r["label"]] = r
    print("| clip | AdaIN per-frame x floor | " + " | ".join(labels) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in labels) + " |")
    shares = {label: [] for label in labels}
    for clip in sorted(by_clip):
        entries = by_clip[clip]
        base = entries.get(baseline)
        if base is None:
            continue
        real = base["over_floor"] >= REAL_EXCESS
        cells = []
        for label in labels:
            r = entries.get(label)
            if r is None:
                cells.append("-")
                continue
            share = r["excess"] / base["excess"] if base["excess"] > 0 else float("nan")
            if real:
                shares[label].append(share)
            cells.append(f"{share * 100:.0f}% (gram {r['gram']:.3f})")
        print(f"| {clip}{'' if real else ' (not real)'} | {base['over_floor']:.2f} | " + " | ".join(cells) + " |")
    print("mean share of AdaIN's excess on clips where it is real: " + ", ".join(
        f"{label} {statistics.mean(v) * 100:.0f}%" for label, v in shares.items() if v))
    for temporal, control in pairs:
        ratios, grams = [], []
        for entries in by_clip.values():
            if temporal in entries and control in entries and entries[control]["excess"] > 0:
                ratios.append(entries[temporal]["excess"] / entries[control]["excess"])
                grams.append(entries[temporal]["gram"] / entries[control]["gram"] - 1)
        if ratios:
            print(f"{temporal} vs {control}: excess x{statistics.mean(ratios):.2f} (mean over {len(ratios)} clips), "
                  f"Gram {statistics.mean(grams) * 100:+.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--entry", action="append", help="LABEL or LABEL=MODEL (repeat)")
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--pair", action="append", default=[], help="TEMPORAL,CONTROL labels to compare")
    ap.add_argument("--report", action="store_true", help="print the tables from the results file and exit")
    args = ap.parse_args()
    results = Path(args.results)
    pairs = [tuple(p.split(",")) for p in args.pair]
    if args.report:
        return report(json.loads(results.read_text()), pairs=pairs)
    if args.threads:
        torch.set_num_threads(args.threads)
    chosen = [c for c in clips() if not args.clips or c.stem in args.clips.split(",")]
    rows = run(args.entry or list(DEFAULT_ENTRIES), args.frames, args.style, chosen, args.threads, results)
    report(rows, pairs=pairs)


if __name__ == "__main__":
    main()
