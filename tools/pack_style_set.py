"""Pack a folder of training paintings as a style set (a reproducible tar) and add its manifest entry.

    python tools/pack_style_set.py assets/datasets/public_domain_paintings.json --fetch public_domain_paintings
    python tools/pack_style_set.py assets/datasets/public_domain_paintings.json --images public_domain_paintings \\
        --name public_domain_paintings -o public_domain_paintings.tar

The provenance file (a JSON list of {file, repo, path, commit, artist, title, year, artist_death_year,
licence_reason}) is the set's record: ``--fetch DIR`` rebuilds the images from it (each file at its recorded
GitHub repo@commit:path, upright by its EXIF orientation, RGB, longer side at most 1024 px by Lanczos, JPEG
quality 92), and packing takes exactly the files it lists. The tar is the same bytes from the same images on any
machine; upload it to the entry's Hub location (brushstream/brushstream-weights) to publish it.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from brushstream.core.hub.weights import register  # noqa: E402
from brushstream.core.io.atomic import atomic_path  # noqa: E402
from brushstream.core.io.image import READ_SUFFIXES  # noqa: E402
from brushstream.core.train.content_sets import PHOTO_SUFFIXES, pack  # noqa: E402

LONG_SIDE, QUALITY = 1024, 92


def read_provenance(path: str) -> list[dict]:
    records = json.loads(Path(path).read_text())
    for r in records:
        name = r["file"]
        if "/" in name or name.startswith(".") or Path(name).suffix.lower() not in PHOTO_SUFFIXES:
            sys.exit(f"{path}: {name!r} is not a flat JPEG or PNG file name")
    if len({r["file"] for r in records}) != len(records):
        sys.exit(f"{path}: a file is listed twice")
    return records


def fetch(records: list[dict], folder: Path) -> None:
    """Download each painting at its recorded commit and write it as the set holds it."""
    from PIL import Image, ImageOps

    for r in records:
        url = f"https://raw.githubusercontent.com/{r['repo']}/{r['commit']}/{urllib.parse.quote(r['path'])}"
        with urllib.request.urlopen(url, timeout=60) as response:
            image = ImageOps.exif_transpose(Image.open(io.BytesIO(response.read()))).convert("RGB")
        w, h = image.size
        scale = LONG_SIDE / max(w, h)
        if scale < 1:
            image = image.resize((round(w * scale), round(h * scale)), Image.LANCZOS)
        with atomic_path(folder / r["file"]) as tmp:
            image.save(tmp, format="JPEG", quality=QUALITY)
        print(f"{r['file']}: {url}")


def check_folder(records: list[dict], folder: Path) -> None:
    """The folder's images are exactly the listed files (one line otherwise)."""
    if not folder.is_dir():
        sys.exit(f"{folder}: no such folder of images (--images)")
    listed = {r["file"] for r in records}
    present = {p.name for p in folder.iterdir()
               if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in READ_SUFFIXES}
    if listed - present:
        sys.exit(f"{folder}: {len(listed - present)} listed file(s) missing, first {sorted(listed - present)[0]}")
    if present - listed:
        sys.exit(f"{folder}: {len(present - listed)} image(s) not in the provenance file, "
                 f"first {sorted(present - listed)[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("provenance", help="the set's JSON record (relative, from the repository root)")
    ap.add_argument("--fetch", metavar="DIR", help="download the listed paintings into DIR and stop")
    ap.add_argument("--images", metavar="DIR", help="folder holding exactly the listed images")
    ap.add_argument("--name")
    ap.add_argument("-o", "--out", help="the tar to write")
    args = ap.parse_args()
    records = read_provenance(args.provenance)
    if args.fetch:
        fetch(records, Path(args.fetch))
        return
    if not (args.images and args.name and args.out):
        ap.error("give --images DIR --name NAME -o OUT.tar (or --fetch DIR)")
    check_folder(records, Path(args.images))
    repos = len({r["repo"] for r in records})
    artists = len({r["artist"] for r in records})
    out = pack(args.images, args.out)
    entry = register(
        out, name=args.name, method="style_set", role="dataset",
        licence=f"public domain (every author died before 1955; per-painting reasons in {args.provenance})",
        attribution=f"{len(records)} paintings by {artists} artists, gathered from {repos} public GitHub "
                    f"repositories; each file's repository, path and commit are in {args.provenance}",
        convention="an uncompressed tar of JPEG paintings (flat names), unpacked into Brushstream's cache",
        description="training styles for arbitrary-style recipes (--style-set)",
        recipe={"command": f"python tools/pack_style_set.py {args.provenance} --images {args.name} "
                           f"--name {args.name} -o {Path(args.out).name}",
                "source": f"{args.name}: each file of {args.provenance} at its recorded repo@commit:path, "
                          f"converted to RGB and reduced to a longer side of at most {LONG_SIDE} px, JPEG quality "
                          f"{QUALITY} (`python tools/pack_style_set.py {args.provenance} --fetch {args.name}`)"})
    print(f"{out}: {entry['bytes']} bytes, sha256 {entry['sha256']}")


if __name__ == "__main__":
    main()
