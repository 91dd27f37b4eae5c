"""Options chosen on training data only: any entries of ours on a few training photos (the content folder, never
content_eval) with training styles (never the held-out ones), Gram style ratio and content distance per entry, and a
sheet to look at. This is where a method's defaults are picked; the held-out report comes after, untouched by it.

    python bench/tuning_set.py "wct5=wct?levels=relu5_1,relu4_1,relu3_1,relu2_1,relu1_1" \
        "wct5_a06=wct?levels=relu5_1,relu4_1,relu3_1,relu2_1,relu1_1&alphas=0.6" [--photos 6] [--size 384]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arbitrary_quality import parse_entry  # noqa: E402
from common import STYLES  # noqa: E402

from brushstream.core.evaluate import comparison_sheet, evaluate, method_runner  # noqa: E402
from brushstream.core.io.image import save_image  # noqa: E402
from brushstream.core.methods import build  # noqa: E402
from brushstream.core.train.data import UNSEEN_STYLES  # noqa: E402

CONTENT = STYLES.parent / "content"
TUNING_STYLES = ("starry_night", "mosaic", "udnie", "brushstrokes")
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("entries", nargs="+", help="LABEL=METHOD?OPTION=VALUE&...")
    ap.add_argument("--photos", type=int, default=6, help="training photos, every 50th of the content folder")
    ap.add_argument("--styles", default=",".join(TUNING_STYLES))
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--sheet", default=str(RESULTS / "sheets" / "tuning.png"))
    ap.add_argument("--report", default="", help="write the summary here as JSON")
    args = ap.parse_args()
    styles = args.styles.split(",")
    if set(styles) & set(UNSEEN_STYLES):
        sys.exit(f"held-out styles are not for tuning: {', '.join(sorted(set(styles) & set(UNSEEN_STYLES)))}")
    photos = sorted(CONTENT.glob("*.jpg"))[::50][: args.photos]
    runners = {}
    for text in args.entries:
        label, method, options = parse_entry(text)
        strength = float(options.pop("strength", 1.0))
        runners[label] = method_runner(build(method, progress=False, **options), strength=strength)
    part, outputs, style_imgs = evaluate(runners, photos, [STYLES / f"{s}.jpg" for s in styles], args.size, {},
                                         keep_outputs={p.name for p in photos[:3]})
    summary = {}
    print(f"# {len(photos)} training photos x {len(styles)} training styles at {args.size} px")
    print("| entry | Gram ratio | content | s/call |")
    print("| --- | --- | --- | --- |")
    for label, rows in part["methods"].items():
        vals = list(rows.values())
        summary[label] = {k: statistics.mean(v[k] for v in vals) for k in ("gram_ratio", "content", "seconds")}
        s = summary[label]
        print(f"| {label} | {s['gram_ratio']:.3f} | {s['content']:.3f} | {s['seconds']:.2f} |")
    sheet = comparison_sheet(outputs, photos[:3], style_imgs, list(runners), args.size, tile=128)
    save_image(torch.from_numpy(np.array(sheet)).permute(2, 0, 1).float() / 255, args.sheet)
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
