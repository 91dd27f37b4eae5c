"""Reconstruction PSNR of each level's decoder on the held-out photos (content_eval, their own size): how much of a
photo survives encode -> decode at that level, the floor under every method that decodes from it.

    python bench/decoder_psnr.py [--decoder relu5_1=FILE ...] [--report bench/results/decoder_psnr.json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CONTENT_EVAL  # noqa: E402

from brushstream.core.nets.pretrained import DECODER_WEIGHTS, vgg_decoder  # noqa: E402
from brushstream.core.train.decoder_recipe import reconstruction_psnr  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decoder", action="append", default=[], help="LEVEL=FILE or LABEL:LEVEL=FILE in place of or "
                    "beside a level's default decoder")
    ap.add_argument("--report", default=str(RESULTS / "decoder_psnr.json"))
    args = ap.parse_args()
    entries = {level: (level, name) for level, name in DECODER_WEIGHTS.items()}
    for text in args.decoder:
        label_level, _, source = text.partition("=")
        label, _, level = label_level.rpartition(":")
        entries[label or level] = (level, source)
    report = {"photos": len(list(CONTENT_EVAL.glob("*.jpg"))), "psnr_db": {}, "decoders": {}}
    print("| decoder | level | PSNR (dB) |\n| --- | --- | --- |")
    for label, (level, source) in entries.items():
        psnr = reconstruction_psnr(vgg_decoder(level, source), level, CONTENT_EVAL)
        report["psnr_db"][label], report["decoders"][label] = round(psnr, 2), Path(source).name
        print(f"| {label} ({Path(source).name}) | {level} | {psnr:.2f} |")
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
