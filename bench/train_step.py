"""Where a training step's time goes, per recipe: ms per step and achieved GFLOP/s for fp32 and bf16 autocast,
contiguous and channels_last memory, on 1 and 2 threads, against the matmul peak this process measures for each
(the ceiling two cores can reach), and for Johnson a split into data loading, the transform net, the VGG16 loss
network and the rest (optimiser and Python).

Each configuration runs the recipe's own ``losses`` exactly as the training loop does (forward under autocast,
backward, Adam step) on a fixed batch; the figures are medians of warm steps, configurations interleaved round
by round so load from other work hits them alike. FLOPs are counted once per recipe with
torch.utils.flop_counter (forward and backward).

    python bench/train_step.py --rounds 3 --size 128 --batch 4
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, STYLES  # noqa: E402

from brushstream.core.train.catalogue import get_recipe  # noqa: E402
from brushstream.core.train.data import PhotoCrops, photo_loader  # noqa: E402

CONTENT = SHARED / "data" / "content"
RECIPES = {
    "johnson": dict(style=(str(STYLES / "starry_night.jpg"),)),
    "msgnet": dict(style=tuple(str(STYLES / s) for s in ("starry_night.jpg", "the_great_wave.jpg",
                                                          "composition_vii.jpg"))),
    "metanet": dict(style=tuple(str(STYLES / s) for s in ("starry_night.jpg", "the_great_wave.jpg",
                                                           "composition_vii.jpg"))),
    "reconet": dict(style=(str(STYLES / "starry_night.jpg"),)),
}


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large square matmul: the practical ceiling of this process's threads for ``dtype``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / min(times) / 1e9


class Setup:
    """One recipe, set up once, with a fixed batch and a fresh model and optimiser per memory format."""

    def __init__(self, name: str, size: int, batch: int):
        self.recipe = get_recipe(name)(content_dir=str(CONTENT), size=size, batch=batch, **RECIPES[name])
        self.recipe.setup(torch.device("cpu"))
        loader = photo_loader(PhotoCrops(CONTENT, size, seed=0), batch)
        self.content = next(loader)
        self.rng = lambda: torch.Generator().manual_seed(0)
        self.models = {}

    def model(self, channels_last: bool):
        if channels_last not in self.models:
            model = self.recipe.build_model()
            self.recipe.prepare_model(model)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            model.train()
            self.models[channels_last] = (model, torch.optim.Adam(model.parameters(), lr=1e-4))
        return self.models[channels_last]

    def step(self, precision: str, channels_last: bool) -> float:
        model, opt = self.model(channels_last)
        x = self.content.contiguous(memory_format=torch.channels_last) if channels_last else self.content
        started = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            terms = self.recipe.losses(model, x, 0, self.rng())
        terms["total"].backward()
        opt.step()
        return time.perf_counter() - started

    def flops(self) -> int:
        model, opt = self.model(False)
        with FlopCounterMode(display=False) as counter:
            terms = self.recipe.losses(model, self.content, 0, self.rng())
            terms["total"].backward()
        opt.zero_grad(set_to_none=True)
        return counter.get_total_flops()


def johnson_split(setup: Setup, precision: str, repeats: int) -> dict[str, float]:
    """Median ms of each part of a Johnson step: data, transform net (forward+backward alone), loss network."""
    model, _ = setup.model(False)
    dataset = PhotoCrops(CONTENT, setup.content.shape[-1], seed=0)
    parts = {"data": [], "transform net": [], "whole step": []}
    ctx = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")  # noqa: E731
    for r in range(repeats + 1):
        t = time.perf_counter()
        torch.stack([dataset[(i, r * 8 + i)] for i in range(setup.content.shape[0])])
        data = time.perf_counter() - t
        t = time.perf_counter()
        with ctx():
            y = model(setup.content)
        y.float().mean().backward()
        transform = time.perf_counter() - t
        whole = setup.step(precision, False)
        if r:   # the first round warms up
            parts["data"].append(data)
            parts["transform net"].append(transform)
            parts["whole step"].append(whole)
    out = {k: 1e3 * statistics.median(v) for k, v in parts.items() if v}
    out["loss network and rest"] = out["whole step"] - out["transform net"]
    out["data (not in the step: a loader)"] = out.pop("data")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="johnson,msgnet,metanet,reconet")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    configs = [(p, cl) for p in ("fp32", "bf16") for cl in (False, True)]
    report = {"size": args.size, "batch": args.batch, "rounds": args.rounds, "torch": torch.__version__,
              "recipes": {}, "peak_gflops": {}}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        report["peak_gflops"][threads] = {p: round(matmul_peak(d)) for p, d in
                                          (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"matmul peak GFLOP/s: {report['peak_gflops']}")
    for name in args.recipes.split(","):
        setup = Setup(name, args.size, args.batch)
        gflop = setup.flops() / 1e9
        rows = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            times = {c: [] for c in configs}
            for c in configs:
                setup.step(*c)   # warm
            for _ in range(args.rounds):
                for c in configs:
                    times[c].append(setup.step(*c))
            for (precision, cl), ts in times.items():
                ms = 1e3 * statistics.median(ts)
                peak = report["peak_gflops"][threads][precision]
                key = f"{precision}{' channels_last' if cl else ''}, {threads} thread{'s' if threads > 1 else ''}"
                rows[key] = {"ms": round(ms, 1), "min_ms": round(1e3 * min(ts), 1), "gflops": round(gflop / ms * 1e3, 1),
                             "of_peak": round(gflop / ms * 1e3 / peak, 3)}
        report["recipes"][name] = {"gflop_per_step": round(gflop, 2), "configs": rows}
        print(f"\n{name}: {gflop:.2f} GFLOP per step (batch {args.batch}, {args.size} px, forward + backward)")
        base = rows["fp32, 2 threads"]["ms"]
        for key, r in rows.items():
            print(f"  {key:28s} {r['ms']:8.1f} ms  {r['gflops']:7.1f} GFLOP/s  {100 * r['of_peak']:5.1f}% of peak  "
                  f"x{base / r['ms']:.2f} vs fp32 2 threads")
        if name == "johnson":
            torch.set_num_threads(2)
            for precision in ("fp32", "bf16"):
                split = johnson_split(setup, precision, args.rounds)
                report["recipes"][name][f"split_{precision}"] = {k: round(v, 1) for k, v in split.items()}
                print(f"  split ({precision}, 2 threads): " + ", ".join(f"{k} {v:.0f} ms" for k, v in split.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
