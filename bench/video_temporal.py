"""Temporal stability on every clip in ../shared/data/video: per-frame vs the flow-guided temporal state.

    python bench/video_temporal.py [--frames 60] [--methods adain,wct,swap] [--strengths 0.8] [--judge farneback]
        [--state-flow flownet?weights=FILE]

For each clip (first N frames, at its own size: all are at most 640x360) and method, the style code is
encoded once and each frame stylized once; the per-frame result is that output, and each temporal
variant feeds the same outputs through the product's StreamState (begin_frame -> stabilise ->
end_frame), which is exactly what ``StyleMethod.stylize(state=...)`` does for an image method. For AdaIN
a second blend site is measured too: the warped previous AdaIN *features* (relu3_1, flow and mask
downsampled to 1/4) blended before the decoder.

Warping error (Lai et al. 2018, core/metrics.py) is graded with a flow backend *other* than the one the
temporal state used (Farneback by default; the state uses DIS unless --state-flow names another backend, whose
variants are then labelled with "@" and its name), beside the input clip's own warping
error (the floor); "kept" is the share of the per-frame excess over the floor that remains. Style
distance is the Gram distance to the style (VGG16, core/metrics.py) and content distance the relu3_3
distance to the input frame (lag or ghosting would raise it), both on every 10th frame (--sample-every).
Results: printed, and bench/results/video_temporal.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from common import SHARED, STYLES, photo

from brushstream.core.flow import get_flow
from brushstream.core.io.video import VideoReader
from brushstream.core.methods import build
from brushstream.core.metrics import QualityMetrics, WarpingError
from brushstream.core.ops.resize import crop_to, pad_to_multiple
from brushstream.core.ops.warp import backward_warp
from brushstream.core.temporal import StreamState

VIDEO = SHARED / "data" / "video"
RESULTS = Path(__file__).resolve().parent / "results" / "video_temporal.json"


def clips() -> list[Path]:
    return sorted(VIDEO.glob("*.mp4"))


def state_flow(flow_options: dict):
    """The temporal state's flow backend: DIS with ``flow_options``, or the backend named under "backend"."""
    options = dict(flow_options)
    return get_flow(options.pop("backend", "dis"), **options)


def parse_state_flow(spec: str) -> dict:
    """"NAME?KEY=VALUE&..." (flow_quality.py's entry syntax) -> the backend's options, its name under "backend"."""
    from flow_quality import parse_entry

    _, name, options = parse_entry("state=" + spec)
    return {"backend": name, **options}


def output_blend(frames, raw, strength: float, flow_options: dict) -> list[torch.Tensor]:
    state = StreamState("bench", strength=strength, flow=state_flow(flow_options))
    outs = []
    for f, y in zip(frames, raw):
        state.begin_frame(f)
        y = state.stabilise(y)
        state.end_frame(y)
        outs.append(y)
    return outs


@torch.inference_mode()
def feature_blend(model, code, frames, strength: float, flow_options: dict) -> list[torch.Tensor]:
    """AdaIN with the blend on relu3_1 target features instead of output pixels (the alternative site)."""
    state = StreamState("bench", strength=strength, flow=state_flow(flow_options))
    outs, prev_t = [], None
    for f in frames:
        state.begin_frame(f)
        x, size = pad_to_multiple(f, model.stride)
        t = model.transfer(model.encoder(x)["relu3_1"], code)
        m = state.motion()
        if m is not None and prev_t is not None:
            h, w = t.shape[-2:]
            flow, rel = pad_to_multiple(m.flow, model.stride)[0], pad_to_multiple(m.reliable, model.stride)[0]
            scale = torch.tensor([w / flow.shape[-1], h / flow.shape[-2]]).view(1, 2, 1, 1)
            small = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False) * scale
            rel = F.interpolate(rel, size=(h, w), mode="area")
            t = t + strength * rel * (backward_warp(prev_t, small) - t)
        prev_t = t
        y = crop_to(model.decoder(t), size).clamp(0, 1)
        state.end_frame(y)
        outs.append(y)
    return outs


def warping(frames, outs, judge: str) -> dict:
    metric = WarpingError(get_flow(judge))
    for f, o in zip(frames, outs):
        metric.update(f, o)
    return metric.summary()


def report(files: list[Path]) -> None:
    """A markdown table from one or more results files: per clip and method, per-frame vs each variant."""
    rows = {}
    for f in files:
        rows.update(json.loads(Path(f).read_text()))
    print("| clip | method | frames | input floor | per-frame (x floor) | variant | warping error | excess kept "
          "| Gram (change) | content |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key in sorted(rows):
        r = rows[key]
        if r["variant"] == "per_frame":
            continue
        base = rows[f"{r['clip']}/{r['method']}/per_frame"]
        print(f"| {r['clip']} | {r['method']} | {r['frames']} | {r['floor'] * 1e4:.2f} | "
              f"{base['warping_error'] * 1e4:.2f} ({r['per_frame_over_floor']:.2f}x) | {r['variant']} | "
              f"{r['warping_error'] * 1e4:.2f} | {r['kept'] * 100:.0f}% | {r['gram']:.3f} ({r['gram_change'] * 100:+.1f}%) "
              f"| {base['content']:.3f} -> {r['content']:.3f} |")
    print("(warping errors x 1e-4)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--methods", default="adain,wct,swap")
    ap.add_argument("--strengths", default="0.8")
    ap.add_argument("--flow-preset", default="medium")
    ap.add_argument("--flow-scale", type=float, default=1.0)
    ap.add_argument("--judge", default="farneback")
    ap.add_argument("--state-flow", default="", help="the temporal state's flow backend instead of DIS, as "
                    "NAME?KEY=VALUE&... (e.g. flownet?weights=FILE); its variants are labelled output_S@NAME")
    ap.add_argument("--style", default="starry_night.jpg")
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    ap.add_argument("--no-feature-site", action="store_true")
    ap.add_argument("--results", default=str(RESULTS), help="JSON file the rows are added to")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    ap.add_argument("--sample-every", type=int, default=10, help="style/content distances on every Nth frame")
    ap.add_argument("--report", nargs="*", metavar="JSON", help="print a table from results files and exit")
    args = ap.parse_args()
    if args.report is not None:
        return report(args.report or [RESULTS])
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = Path(args.results)
    strengths = [float(s) for s in args.strengths.split(",")]
    flow_options = {"preset": args.flow_preset, "scale": args.flow_scale}
    suffix = ""
    if args.state_flow:
        flow_options = parse_state_flow(args.state_flow)
        suffix = "@" + flow_options["backend"]
    style = photo(STYLES / args.style, 512)
    qm = QualityMetrics()
    targets = qm.style_targets(style)
    every = args.sample_every
    gram = lambda outs: statistics.mean(qm.style_distance(o, targets)["gram"] for o in outs[::every])  # noqa: E731
    rows = json.loads(results.read_text()) if results.exists() else {}
    chosen = [c for c in clips() if not args.clips or c.stem in args.clips.split(",")]
    for clip in chosen:
        with VideoReader(clip, max_frames=args.frames) as reader:
            frames = [fr.image for fr in reader]
        # Content distance to the current input frame reveals lag and ghosting a blend could add.
        layer = qm.content_layer
        with torch.inference_mode():
            frame_feats = [qm.vgg(f, (layer,))[layer] for f in frames[::every]]
        content = lambda outs: statistics.mean(   # noqa: E731
            float((qm.vgg(o, (layer,))[layer] - ff).norm() / ff.norm()) for o, ff in zip(outs[::every], frame_feats))
        floor = None
        for name in args.methods.split(","):
            model = build(name)
            code = model.encode_style(style)
            began = time.perf_counter()
            with torch.inference_mode():
                raw = [model.stylize(f, code) for f in frames]
            seconds = (time.perf_counter() - began) / len(frames)
            variants = {"per_frame": raw}
            for s in strengths:
                variants[f"output_{s:g}{suffix}"] = output_blend(frames, raw, s, flow_options)
                if name == "adain" and not args.no_feature_site:
                    variants[f"features_{s:g}{suffix}"] = feature_blend(model, code, frames, s, flow_options)
            base = None
            for label, outs in variants.items():
                w = warping(frames, outs, args.judge)
                g, c = gram(outs), content(outs)
                if base is None:
                    base = (w, g)
                floor = w["input_warping_error"]
                excess0 = max(base[0]["warping_error"] - floor, 1e-12)
                row = {"clip": clip.stem, "method": name, "variant": label, "frames": len(frames),
                       "size": list(frames[0].shape[-2:]), "warping_error": w["warping_error"], "floor": floor,
                       "excess": w["warping_error"] - floor, "kept": (w["warping_error"] - floor) / excess0,
                       "per_frame_over_floor": base[0]["warping_error"] / floor, "gram": g,
                       "gram_change": g / base[1] - 1, "content": c, "s_per_frame": seconds, "judge": args.judge,
                       "flow": flow_options}
                rows[f"{clip.stem}/{name}/{label}"] = row
                print(f"{clip.stem:18s} {name:6s} {label:13s} warp {row['warping_error'] * 1e4:7.2f}e-4 "
                      f"floor {floor * 1e4:6.2f}e-4 per-frame/floor {row['per_frame_over_floor']:5.2f} "
                      f"excess kept {row['kept'] * 100:6.1f}% gram {g:.4f} ({row['gram_change'] * 100:+.1f}%) content {c:.3f}",
                      flush=True)
            results.parent.mkdir(exist_ok=True)
            results.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
