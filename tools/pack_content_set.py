"""Pack a folder of training photos as a content set (a reproducible tar) and add its manifest entry.

    python tools/pack_content_set.py content --name bsds500_train_320 -o bsds500_train_320.tar

Run from the folder that holds the photos' folder (the shared data collection), so the recorded command is
relative. The tar is the same bytes from the same photos on any machine, so the entry's sha256 is reproducible;
upload the tar to the entry's Hub location (brushstream/brushstream-weights) to publish it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from brushstream.core.hub.weights import register  # noqa: E402
from brushstream.core.train.content_sets import pack  # noqa: E402

ATTRIBUTION = ("the 500 photos of the Berkeley Segmentation Data Set BSDS500 (Arbeláez, Maire, Fowlkes & Malik, "
               "TPAMI 2011), JPEG q90 with the shorter side at 320 px (see shared/data/SOURCES.md)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", help="folder of photos (relative, from the data collection)")
    ap.add_argument("--name", required=True)
    ap.add_argument("-o", "--out", required=True, help="the tar to write")
    ap.add_argument("--licence", default="research and non-commercial use (BSDS500 terms)")
    args = ap.parse_args()
    out = pack(args.folder, args.out)
    entry = register(out, name=args.name, method="content_set", licence=args.licence, attribution=ATTRIBUTION,
                     convention="an uncompressed tar of JPEG photos (flat names), unpacked into Brushstream's cache",
                     description="training photos for `brushstream train` (the default --content-set)",
                     recipe={"command": f"python tools/pack_content_set.py {args.folder} --name {args.name} "
                                        f"-o {Path(args.out).name}"})
    print(f"{out}: {entry['bytes']} bytes, sha256 {entry['sha256']}")


if __name__ == "__main__":
    main()
