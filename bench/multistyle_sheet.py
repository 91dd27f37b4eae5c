"""A sheet of a multi-style network's styles: rows are held-out photos (content_eval), columns the photo and then
every style the network holds, plus one blend of the first two.

    python bench/multistyle_sheet.py --photos 3 --size 320 -o docs/benchmarks/video_multistyle_sheet.jpg
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import SHARED

from brushstream.core.io.image import list_images, load_image, save_image
from brushstream.core.methods import build
from brushstream.core.ops.resize import resize_long_side


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="video_multistyle")
    ap.add_argument("--model", default="video_multistyle_8")
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--size", type=int, default=320, help="longer side of each tile")
    ap.add_argument("-o", "--output", default="multistyle_sheet.jpg")
    args = ap.parse_args()
    method = build(args.method, model=args.model)
    styles = method.capabilities.fixed_styles
    codes = [method.encode_style(name) for name in styles] + [method.encode_style({styles[0]: 1, styles[1]: 1})]
    rows = []
    with torch.inference_mode():
        for path in list_images(SHARED / "data" / "content_eval")[:args.photos]:
            photo = resize_long_side(load_image(path).image, args.size)
            h, w = (s - s % 4 for s in photo.shape[-2:])
            photo = photo[..., :h, :w]
            rows.append(torch.cat([photo] + [method.stylize(photo, code) for code in codes], -1))
    width = max(r.shape[-1] for r in rows)
    sheet = torch.cat([torch.nn.functional.pad(r, (0, width - r.shape[-1])) for r in rows], -2)
    save_image(sheet, Path(args.output))
    print(f"{args.output}: columns photo, {', '.join(styles)}, {styles[0]}+{styles[1]}")


if __name__ == "__main__":
    main()
