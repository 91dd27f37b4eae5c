"""MicroAST parity: our implementation (core/nets/microast.py with the converted microast_official file) against the
official release's own code and weights, loaded by path from ../shared/peers/microast (peer.py), on 3 photos of
content_eval with 3 styles at 384 px. Prints the max and mean absolute difference of the outputs (both clamped to
0-1, as each returns them), and seconds per call of each, run interleaved in this one process.

Photos are cropped to sides a multiple of 4 so that the release's network, which has no padding step, returns the
photo's own size. Strength 0 is compared too: ours defines it as the content put through the style side as its own
style (core/methods/microast.py), which is the release run with the content as the style image.

    python bench/microast_parity.py [--threads 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CONTENT_EVAL, SHARED, STYLES, eval_photos, photo  # noqa: E402

from brushstream.core.methods import build  # noqa: E402

PEER_DIR = SHARED / "peers" / "microast"
SIZE = 384
PHOTOS = 3
STYLE_NAMES = ("starry_night.jpg", "the_great_wave.jpg", "composition_vii.jpg")


def load_peer(threads: int):
    """The release's wrapper (peer.py) imported by path under its own module name: bench/peer.py is another peer."""
    spec = importlib.util.spec_from_file_location("microast_release_peer", PEER_DIR / "peer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MicroAST(threads=threads)


def to_multiple_of_4(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x[..., : h - h % 4, : w - w % 4]


def timed(fn, *args, **kw) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per pair and implementation")
    args = ap.parse_args()
    if not (PEER_DIR / "peer.py").is_file():
        sys.exit(f"{PEER_DIR}/peer.py: not found (the official MicroAST release beside the repository)")
    torch.set_num_threads(args.threads)
    official = load_peer(args.threads)
    ours = build("microast", model="microast_official")
    photos = [to_multiple_of_4(photo(p, SIZE)) for p in eval_photos()[:PHOTOS]]
    styles = [photo(STYLES / n, SIZE) for n in STYLE_NAMES]
    print(f"photos: {', '.join(p.name for p in eval_photos()[:PHOTOS])} from {CONTENT_EVAL.name}; "
          f"styles: {', '.join(STYLE_NAMES)}; {SIZE} px; {args.threads} threads")

    diffs, zero_diffs = [], []
    times = {"official": [], "ours (encode + stylize)": [], "ours (stylize, code reused)": []}
    with torch.no_grad():
        for content in photos:
            for style in styles:
                code = ours.encode_style(style)
                ref = official(content, style)
                out = ours.stylize(content, code)
                diffs.append((out - ref).abs())
                for _ in range(args.repeats):   # interleaved, so load on the machine hits all three alike
                    times["official"].append(timed(official, content, style)[1])
                    times["ours (encode + stylize)"].append(
                        timed(lambda: ours.stylize(content, ours.encode_style(style)))[1])
                    times["ours (stylize, code reused)"].append(timed(ours.stylize, content, code)[1])
            zero = ours.stylize(content, ours.encode_style(styles[0]), strength=0.0)
            zero_diffs.append((zero - official(content, content)).abs())

    print(f"strength 1 vs official alpha 1, {len(diffs)} pairs: max abs diff {max(d.max().item() for d in diffs):.3g}, "
          f"mean abs diff {statistics.mean(d.mean().item() for d in diffs):.3g}")
    print(f"strength 0 vs official with the content as its style, {len(zero_diffs)} photos: max abs diff "
          f"{max(d.max().item() for d in zero_diffs):.3g}, mean abs diff "
          f"{statistics.mean(d.mean().item() for d in zero_diffs):.3g}")
    for label, values in times.items():
        print(f"{label}: median {statistics.median(values):.4f} s/call (min {min(values):.4f}, max {max(values):.4f}, "
              f"n={len(values)})")


if __name__ == "__main__":
    main()
