"""Writes docs/python_api.jpg, the README's picture for the Python API: the bundled photo and style, then what
the README's Python example makes of them (WCT at relu3_1 -> relu2_1, strength 0.8, and the one-call AdaIN).

    python tools/readme_python_picture.py
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

import brushstream

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "assets" / "samples"
HEIGHT = 192


def _fit(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[-2:]
    return F.interpolate(image, size=(HEIGHT, round(w * HEIGHT / h)), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


def main() -> None:
    torch.manual_seed(0)
    photo = brushstream.load_image(str(SAMPLES / "chelsea.jpg"), long_side=384).image
    style = brushstream.load_image(str(SAMPLES / "starry_night.jpg"), long_side=384).image
    wct = brushstream.load("wct", levels=("relu3_1", "relu2_1"))
    wct_out = wct.stylize(photo, wct.encode_style(style), strength=0.8)
    adain = brushstream.load("adain")
    adain_out = adain.stylize(photo, adain.encode_style(style))
    gap = torch.ones(1, 3, HEIGHT, 6)
    row = [_fit(photo), gap, _fit(style), gap, _fit(wct_out), gap, _fit(adain_out)]
    brushstream.save_image(torch.cat(row, dim=-1), str(ROOT / "docs" / "python_api.jpg"))


if __name__ == "__main__":
    main()
