"""Train every shipped style network at paper-like scale on one GPU within 10 minutes, into one folder.

The prepared script for a lent GPU (an H100 or H200). It runs each network's recipe through the same loop as
`brushstream train --minutes`, on CUDA with bf16 autocast, at the paper's crop size (256 px) and a 4x larger
batch than the paper's 4, each under its own share of a 9-minute budget, and writes the files, their
manifest sidecars, loss curves and preview sheets under OUT. Data: a folder holding content/ (the training
photos) and styles/ (the style images), such as the shared data collection copied into the repository
(the device machine reaches nothing else).

    python tools/gpu_train_all.py --data .gpu_data --out "$OUT"          # on the GPU machine
    python tools/gpu_train_all.py --data ../shared/data --out /tmp/plan --dry-run   # check the plan here

Budget split (minutes; the whole is 9, leaving a minute for start-up and copying the files back):
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from brushstream.core.train.adain_recipe import HELD_OUT  # noqa: E402
from brushstream.core.train.catalogue import get_recipe  # noqa: E402
from brushstream.core.train.loop import fit  # noqa: E402

MULTI_STYLES = ("starry_night", "the_great_wave", "composition_vii", "udnie", "delaunay_portrait", "mondrian",
                "small_worlds_i", "scene_de_rue")
# name, recipe, styles, minutes, recipe fields. The paper's crop (256 px), a batch of 16.
PLAN = [
    *[(f"johnson_{s}", "johnson", (s,), 0.75, {"style_weight": 15.0}) for s in
      ("starry_night", "the_great_wave", "composition_vii", "udnie", "delaunay_portrait")],
    *[(f"johnson_rt_{s}", "johnson", (s,), 0.5, {"style_weight": 15.0, "width": 16}) for s in
      ("starry_night", "the_great_wave", "composition_vii")],
    ("msgnet_styles", "msgnet", MULTI_STYLES, 1.0, {}),
    ("metanet_styles", "metanet", "all but held out", 0.75, {}),
    *[(f"reconet_rt_{s}", "reconet", (s,), 0.5, {"style_weight": 30.0, "temporal_weight": 750.0,
                                                 "feature_temporal_weight": 15.0}) for s in
      ("starry_night", "the_great_wave")],
]
__doc__ += "".join(f"\n    {name:32s} {minutes:4.2f}" for name, _, _, minutes, _ in PLAN)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with content/ and styles/")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--only", help="comma-separated names from the plan")
    ap.add_argument("--dry-run", action="store_true", help="build and check every recipe, train nothing")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    picked = set(args.only.split(",")) if args.only else None
    total = sum(m for n, _, _, m, _ in PLAN if picked is None or n in picked)
    if total > 9.0:
        raise SystemExit(f"the plan asks for {total:g} minutes; it must fit in 9")
    summary = {}
    for name, recipe_name, styles, minutes, fields in PLAN:
        if picked is not None and name not in picked:
            continue
        if styles == "all but held out":   # MetaNet learns from every style but those it is judged on
            styles = tuple(p.stem for p in sorted((data / "styles").glob("*.jpg")) if p.stem not in HELD_OUT)
        recipe = get_recipe(recipe_name)(content_dir=str(data / "content"), size=args.size, batch=args.batch,
                                         style=tuple(str(data / "styles" / f"{s}.jpg") for s in styles), **fields)
        recipe.check()
        if args.dry_run:
            print(f"{name}: {recipe.command(minutes)}")
            continue
        started = time.monotonic()
        result = fit(recipe, out / f"{name}.safetensors", minutes=minutes, device="cuda", precision="auto",
                     checkpoint_every=10_000, progress=False)
        summary[name] = {"steps": result.steps, "seconds": round(time.monotonic() - started, 1),
                         "final_losses": result.final_losses, "precision": result.metadata["precision"]}
        print(json.dumps({name: summary[name]}), flush=True)
    if not args.dry_run:
        (out / "gpu_plan_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        pack(out)


def pack(out: Path, limit: int = 15 * 2 ** 20) -> None:
    """The device tool brings back at most 8 files of 16 MiB: the results go into tars under that size."""
    files = sorted(p for p in out.iterdir() if p.is_file() and p.suffix != ".tar")
    groups, size = [[]], 0
    for f in files:
        if groups[-1] and size + f.stat().st_size > limit:
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += f.stat().st_size
    if len(groups) > 8:
        raise SystemExit(f"{len(groups)} tars would not all come back; train fewer networks per call (--only)")
    for i, group in enumerate(groups):
        with tarfile.open(out / f"results_{i}.tar", "w") as tar:
            for f in group:
                tar.add(f, arcname=f.name)
                f.unlink()


if __name__ == "__main__":
    main()
