"""Does bf16 autocast train to the same losses as fp32? The same Johnson run (same seed, data and
initial weights) in both precisions, with the final losses (mean of the last tenth of the run) side by side.

    python bench/train_precision.py --steps 60 --size 128
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, STYLES  # noqa: E402

from brushstream.core.train.johnson_recipe import JohnsonRecipe  # noqa: E402
from brushstream.core.train.loop import fit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--style", default="starry_night")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            recipe = JohnsonRecipe(content_dir=str(SHARED / "data" / "content"), style=(str(STYLES / f"{args.style}.jpg"),),
                                   size=args.size, steps=args.steps, style_weight=8.0)
            started = time.monotonic()
            result = fit(recipe, Path(tmp) / f"{precision}.safetensors", precision=precision, progress=False,
                         loss_curve=False)
            rows[precision] = {"final_losses": {k: round(v, 4) for k, v in result.final_losses.items()},
                               "first_total": round(result.history[0]["total"], 4),
                               "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(rows, indent=1))
    a, b = rows["fp32"]["final_losses"]["total"], rows["bf16"]["final_losses"]["total"]
    print(f"final total loss: fp32 {a:.4f}, bf16 {b:.4f} ({100 * (b / a - 1):+.1f}%); "
          f"time bf16/fp32 {rows['bf16']['seconds'] / rows['fp32']['seconds']:.2f}")


if __name__ == "__main__":
    main()
