"""Edge bands of the decoder methods: how far the outermost pixels of an output depart from what the same
networks make of those pixels when they sit inside the picture (the photo reflect-padded by 96 px, stylized,
cropped back), against the context the method adds (StyleMethod.context) and without it.

Prints, per method and level, the mean absolute difference (0-1 scale, luminance and colour) in the outer
6 px band and in the interior, and the signed luminance per side (a light band is positive), averaged over
content_eval photos at 384 px with a held-out style (candy).

    python bench/edge_bands.py --photos 6
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import STYLES, eval_photos, photo  # noqa: E402

from brushstream.core.io.image import load_image  # noqa: E402
from brushstream.core.methods import build  # noqa: E402
from brushstream.core.ops.resize import resize_long_side  # noqa: E402

BAND = 6
REFERENCE_CONTEXT = 96


def in_context(model, code, x: torch.Tensor, context: int) -> torch.Tensor:
    saved = model.context
    model.context = 0
    try:
        padded = F.pad(x, (context,) * 4, mode="reflect") if context else x
        y = model.stylize(padded, code)
    finally:
        model.context = saved
    return y[..., context:-context, context:-context] if context else y


def band_figures(y: torch.Tensor, reference: torch.Tensor, k: int = BAND) -> dict[str, float]:
    diff = (y - reference)[0]
    mag = diff.abs().mean(0)
    border = torch.cat([mag[:k].flatten(), mag[-k:].flatten(), mag[:, :k].flatten(), mag[:, -k:].flatten()])
    lum = diff.mean(0)
    return {"border": float(border.mean()), "interior": float(mag[2 * k:-2 * k, 2 * k:-2 * k].mean()),
            "top": float(lum[:k].mean()), "bottom": float(lum[-k:].mean()),
            "left": float(lum[:, :k].mean()), "right": float(lum[:, -k:].mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--style", default="candy")
    args = ap.parse_args()
    style = resize_long_side(load_image(STYLES / f"{args.style}.jpg").image, 512)
    setups = {"adain relu4_1": dict(method="adain", level="relu4_1"), "adain relu3_1": dict(method="adain"),
              "adain fast": dict(method="adain", level="fast"), "lst r31": dict(method="lst")}
    for label, kw in setups.items():
        model = build(kw.pop("method"), **kw)
        code = model.encode_style([style])
        rows = {"with context": [], "without": []}
        for p in eval_photos()[:args.photos]:
            x = photo(p, 384)
            reference = in_context(model, code, x, REFERENCE_CONTEXT)
            rows["with context"].append(band_figures(model.stylize(x, code), reference))
            rows["without"].append(band_figures(in_context(model, code, x, 0), reference))
        for name, figures in rows.items():
            mean = {k: statistics.mean(f[k] for f in figures) for k in figures[0]}
            print(f"{label:14s} {name:13s} (context {model.context if name == 'with context' else 0:2d} px): "
                  + "  ".join(f"{k} {v:+.4f}" for k, v in mean.items()))


if __name__ == "__main__":
    main()
