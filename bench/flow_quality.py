"""Optical flow quality and speed (issue 10): end-point error of each flow backend on the MPI-Sintel pairs in
../shared/data/flow (all pixels and non-occluded ones, invalid pixels excluded) and on held-out synthetic pairs
(core/flow/synthetic.py, from the content_eval photos, never trained on), with the mean flow on a frame given twice
and seconds per 640x360 pair, all backends measured in this one process so the ratios hold on a busy machine.

Entries are ``LABEL=BACKEND?OPTION=VALUE&...``, e.g. ``dis_medium=dis?preset=medium`` or
``flownetc=flownet?weights=flownetc_small``.

    python bench/flow_quality.py dis_medium=dis?preset=medium flownetc=flownet?weights=flownetc_small
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, spread  # noqa: E402

from brushstream.core.flow import get_flow  # noqa: E402
from brushstream.core.flow.flo_io import read_flo  # noqa: E402
from brushstream.core.io.atomic import atomic_path  # noqa: E402
from brushstream.core.io.image import load_image  # noqa: E402

SINTEL = SHARED / "data" / "flow" / "sintel" / "training"
RESULTS = Path(__file__).resolve().parent / "results"


def parse_entry(text: str) -> tuple[str, str, dict]:
    label, _, spec = text.partition("=")
    backend, _, query = spec.partition("?")
    options = {}
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        options[key] = float(value) if key == "scale" else value
    return label, backend or label, options


def sintel_pairs(passes: tuple[str, ...]) -> list[dict]:
    pairs = []
    for flo in sorted((SINTEL / "flow").glob("*/*.flo")):
        scene, frame = flo.parent.name, flo.stem
        number = int(frame.split("_")[1])
        for pass_name in passes:
            first = SINTEL / pass_name / scene / f"{frame}.png"
            if not first.exists():
                continue
            second = first.with_name(f"frame_{number + 1:04d}.png")
            occluded = load_image(SINTEL / "occlusions" / scene / f"{frame}.png").image[0, 0] > 0.5
            invalid = load_image(SINTEL / "invalid" / scene / f"{frame}.png").image[0, 0] > 0.5
            pairs.append({"name": f"{scene}/{pass_name}", "a": load_image(first).image, "b": load_image(second).image,
                          "flow": read_flo(flo), "valid": ~invalid, "noc": ~invalid & ~occluded})
    return pairs


def synthetic_pairs(count: int, size: int, seed: int) -> list[dict]:
    from brushstream.core.flow.synthetic import held_out_pairs
    a, b, flow, occlusion = held_out_pairs(SHARED / "data" / "content_eval", count, size, seed)
    return [{"name": f"synthetic_{i}", "a": a[i:i + 1], "b": b[i:i + 1], "flow": flow[i],
             "valid": torch.ones_like(occlusion[i, 0], dtype=torch.bool), "noc": occlusion[i, 0] < 0.5}
            for i in range(a.shape[0])]


def epe(flow: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float:
    error = (flow - truth).pow(2).sum(0).sqrt()
    return error[mask].mean().item()


def measure(backend, pairs: list[dict]) -> dict:
    rows, seconds = {}, []
    with torch.inference_mode():
        for p in pairs:
            start = time.perf_counter()
            flow = backend(p["a"], p["b"])[0].float().cpu()
            seconds.append(time.perf_counter() - start)
            rows[p["name"]] = {"all": epe(flow, p["flow"], p["valid"]), "noc": epe(flow, p["flow"], p["noc"])}
    return {"pairs": rows, "seconds": seconds}


def identical_frames(backend, pairs: list[dict]) -> float:
    """Mean flow magnitude in px when each pair's first frame is given twice (the truth is 0 everywhere)."""
    with torch.inference_mode():
        return statistics.mean(backend(p["a"], p["a"])[0].float().pow(2).sum(0).sqrt().mean().item() for p in pairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("entries", nargs="+")
    ap.add_argument("--passes", default="final,clean", help="Sintel passes (final is the harder)")
    ap.add_argument("--synthetic", type=int, default=16, help="held-out synthetic pairs (0: none)")
    ap.add_argument("--synthetic-size", type=int, default=256)
    ap.add_argument("--timing-size", type=lambda t: tuple(int(v) for v in t.split("x")), default=(640, 360),
                    help="WIDTHxHEIGHT of the timed pair (a Sintel pair resized)")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds over the Sintel pairs (the first warms up)")
    ap.add_argument("-o", "--output", default=str(RESULTS / "flow_quality.json"))
    args = ap.parse_args()

    sintel = sintel_pairs(tuple(args.passes.split(",")))
    synthetic = synthetic_pairs(args.synthetic, args.synthetic_size, seed=12345) if args.synthetic else []
    backends = {label: get_flow(name, **options) for label, name, options in map(parse_entry, args.entries)}
    results = {}
    for label, backend in backends.items():
        results[label] = {"sintel": measure(backend, sintel), "synthetic": measure(backend, synthetic) if synthetic else None,
                          "identical": identical_frames(backend, sintel)}
    # Timing: rounds interleaved across backends on one Sintel pair at the timing size, so load changes hit all alike.
    timing_pair = {k: F.interpolate(sintel[0][k], size=args.timing_size[::-1], mode="area") for k in ("a", "b")}
    times = {label: [] for label in backends}
    with torch.inference_mode():
        for r in range(args.rounds + 1):
            for label, backend in backends.items():
                start = time.perf_counter()
                backend(timing_pair["a"], timing_pair["b"])
                if r:
                    times[label].append(time.perf_counter() - start)

    lines = [f"# EPE in px (all pixels / non-occluded); Sintel pairs at 1024x436, synthetic {args.synthetic} pairs at "
             f"{args.synthetic_size} px; 'same' = mean flow with a Sintel frame given twice; seconds per "
             f"{args.timing_size[0]}x{args.timing_size[1]} pair; torch threads {torch.get_num_threads()}",
             f"{'backend':<16}{'sintel all':>11}{'sintel noc':>11}{'synth all':>10}{'synth noc':>10}{'same':>7}"
             f"{'s/pair':>9}  spread"]
    base = None
    for label, r in results.items():
        s_all = statistics.mean(v["all"] for v in r["sintel"]["pairs"].values())
        s_noc = statistics.mean(v["noc"] for v in r["sintel"]["pairs"].values())
        syn = r["synthetic"]
        y_all = statistics.mean(v["all"] for v in syn["pairs"].values()) if syn else float("nan")
        y_noc = statistics.mean(v["noc"] for v in syn["pairs"].values()) if syn else float("nan")
        t = statistics.median(times[label])
        base = base or t
        r["summary"] = {"sintel_all": s_all, "sintel_noc": s_noc, "synthetic_all": y_all, "synthetic_noc": y_noc,
                        "identical_frames": r["identical"], "seconds_per_pair": t, "time_vs_first": t / base}
        lines.append(f"{label:<16}{s_all:>11.3f}{s_noc:>11.3f}{y_all:>10.3f}{y_noc:>10.3f}{r['identical']:>7.2f}{t:>9.3f}  "
                     f"{spread(times[label])}, x{t / base:.2f} of {next(iter(results))}")
    lines.append("per Sintel pair (all / noc):")
    for name in results[next(iter(results))]["sintel"]["pairs"]:
        lines.append(f"  {name:<22}" + "".join(f"  {label} {r['sintel']['pairs'][name]['all']:.2f}/"
                                               f"{r['sintel']['pairs'][name]['noc']:.2f}" for label, r in results.items()))
    text = "\n".join(lines)
    print(text)
    out = Path(args.output)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps({"entries": args.entries, "results": results}, indent=1))
    with atomic_path(out.with_suffix(".txt")) as tmp:
        Path(tmp).write_text(text + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
