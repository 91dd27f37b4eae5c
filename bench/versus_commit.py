"""This checkout against an earlier commit, in one process: seconds per image for each still method, ratio new/old.

The earlier commit is checked out into a temporary git worktree and imported under another package name
(the package's internal imports are relative), so both run interleaved on the same inputs and the same
noisy machine; only the ratio is the signal. Style encoded on every call, as in speed_stills.py.

    python bench/versus_commit.py 35ad31f --size 512 --rounds 5 --methods adain,wct,swap
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import STYLES, eval_photos, photo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _import_commit(rev: str, where: Path):
    tree = where / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
    (where / "brushstream_base").symlink_to(tree)
    sys.path.insert(0, str(where))
    return importlib.import_module("brushstream_base.core.methods")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rev", help="the earlier commit")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--methods", default="adain,wct,swap")
    args = ap.parse_args()
    from brushstream.core.methods import build

    with tempfile.TemporaryDirectory() as tmp:
        try:
            old = _import_commit(args.rev, Path(tmp))
            photos = [photo(p, args.size) for p in eval_photos()[: args.photos]]
            style = photo(STYLES / "starry_night.jpg", args.size)
            print(f"# {args.size} px, {args.photos} photos x {args.rounds} rounds, this checkout vs {args.rev}, "
                  f"torch threads {torch.get_num_threads()}")
            for m in args.methods.split(","):
                models = {"new": build(m), "old": old.build(m)}
                times = {k: [] for k in models}
                with torch.no_grad():
                    for model in models.values():   # warm-up
                        model.stylize(photos[0], model.encode_style([style]))
                    for _ in range(args.rounds):
                        for c in photos:
                            for k, model in models.items():
                                t = time.perf_counter()
                                model.stylize(c, model.encode_style([style]))
                                times[k].append(time.perf_counter() - t)
                new, base = statistics.median(times["new"]), statistics.median(times["old"])
                print(f"{m:6s} new {new:.3f} s  old {base:.3f} s  new/old {new / base:.2f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / "tree")],
                           check=False)


if __name__ == "__main__":
    main()
