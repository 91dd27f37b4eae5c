"""Quality against minutes: train a style network under a wall-clock budget (`fit(..., minutes=M)`, the same
loop as `brushstream train --minutes M`), then measure it the way bench/feedforward_quality.py does (Gram ratio
and content distance on content_eval at 384 px, core/metrics.py), and append one JSON row per run.

Each variant is a separate run with its own budget (a 15-minute run is not the 15-minute mark of a 30-minute
one: the schedule follows the budget). Run one at a time on a quiet machine; the row records the load average.

    python bench/train_curve.py --style starry_night --minutes 15 --variant sw30_init --out bench/results/train_curve.json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, STYLES, eval_photos  # noqa: E402

from brushstream.core.evaluate import evaluate  # noqa: E402
from brushstream.core.methods import build  # noqa: E402
from brushstream.core.metrics import QualityMetrics  # noqa: E402
from brushstream.core.train.catalogue import get_recipe  # noqa: E402
from brushstream.core.train.loop import fit  # noqa: E402

CONTENT = SHARED / "data" / "content"
# Named settings compared on the curve; each is the recipe's fields plus loop options.
VARIANTS = {
    "paper_sw5": dict(recipe={"style_weight": 5.0, "style_size": 256}),
    "sw30": dict(recipe={"style_weight": 30.0}),
    "sw30_init": dict(recipe={"style_weight": 30.0}, init_from="johnson_the_great_wave"),
    "sw30_init_small_first": dict(recipe={"style_weight": 30.0, "small_first": 0.5}, init_from="johnson_the_great_wave"),
    "sw15_init": dict(recipe={"style_weight": 15.0}, init_from="johnson_the_great_wave"),
    "sw8_init": dict(recipe={"style_weight": 8.0}, init_from="johnson_the_great_wave"),
    "sw8_init_from_starry": dict(recipe={"style_weight": 8.0}, init_from="johnson_starry_night"),
    "rt_sw8_init": dict(recipe={"style_weight": 8.0, "width": 16}, init_from="johnson_rt_mondrian"),
    "rt_sw8": dict(recipe={"style_weight": 8.0, "width": 16}),
    "sw5": dict(recipe={"style_weight": 5.0}),     # with --init-from: moves a trained net toward content
}


def measure(model_file: Path, style: str, photos: int, metrics: QualityMetrics) -> dict:
    model = build("johnson", model=str(model_file))
    code = model.encode_style(0)
    report, _, _ = evaluate({"net": lambda c, _s: model.stylize(c, code)}, eval_photos()[:photos],
                           [STYLES / f"{style}.jpg"], 384, {}, keep_outputs=False, metrics=metrics)
    rows = report["methods"]["net"].values()
    return {"gram_ratio": statistics.mean(r["gram_ratio"] for r in rows),
            "content": statistics.mean(r["content"] for r in rows), "photos": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="johnson")
    ap.add_argument("--style", required=True)
    ap.add_argument("--minutes", type=float, help="a wall-clock budget (fit's --minutes)")
    ap.add_argument("--steps", type=int, help="or a step count (a quiet machine's minutes: steps x its step time)")
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--init-from", help="start from this file or weight name instead of the variant's")
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--runs", default="runs/curve", help="folder for the trained files")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_curve.json"))
    args = ap.parse_args()
    if (args.minutes is None) == (args.steps is None):
        ap.error("give --minutes or --steps")
    variant = VARIANTS[args.variant]
    recipe = get_recipe(args.recipe)(content_dir=str(CONTENT), style=(str(STYLES / f"{args.style}.jpg"),),
                                     **variant["recipe"], **({"steps": args.steps} if args.steps else {}))
    budget = f"{args.minutes:g}min" if args.minutes else f"{args.steps}steps"
    out = Path(args.runs) / f"{args.recipe}_{args.style}_{args.variant}_{budget}.safetensors"
    for stale in (out, out.with_name(out.stem + ".ckpt"), out.with_name(out.name + ".ckpt")):
        stale.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    started = time.monotonic()
    init_from = args.init_from or variant.get("init_from")
    result = fit(recipe, out, minutes=args.minutes, init_from=init_from, precision=args.precision,
                 checkpoint_every=100)
    wall = time.monotonic() - started
    quality = measure(out, args.style, args.photos, QualityMetrics())
    row = {"recipe": args.recipe, "style": args.style, "variant": args.variant, "minutes": args.minutes,
           **({"init_from": Path(init_from).name} if args.init_from else {}),
           "steps_asked": args.steps,
           "wall_s": round(wall, 1), "steps": result.steps, "precision": result.metadata["precision"],
           "final_losses": result.final_losses, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
           **quality, "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps(row))
    path = Path(args.out)
    rows = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(rows + [row], indent=1) + "\n")


if __name__ == "__main__":
    main()
