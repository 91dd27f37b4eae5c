"""`brushstream flow FRAME1 FRAME2 -o OUT.flo|OUT.png`: optical flow between two frames with any backend.

The flow is at the frames' own size, in pixels, from FRAME1 to FRAME2 (a pixel x of FRAME1 sits at x + flow(x) in
FRAME2). A .flo output is Middlebury's format; an image output is the colour-wheel picture (visualise.py).
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import BrushstreamError

FLOW_SUFFIXES = (".flo",)
MIN_FRAME_SIDE = 16   # OpenCV's DIS refuses frames under 12 px; FlowNet's pyramid halves six times
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")


def cmd_flow(args) -> int:
    import torch

    from ..io.image import check_output_path, load_image, save_image
    from . import get_flow
    from .flo_io import write_flo
    from .visualise import flow_to_rgb

    out = Path(args.output)
    suffix = out.suffix.lower()
    if suffix not in FLOW_SUFFIXES + PICTURE_SUFFIXES:
        raise BrushstreamError(f"{out}: write the flow as .flo (Middlebury) or as a picture (.png, .jpg)")
    if suffix in PICTURE_SUFFIXES:
        check_output_path(out)
    first, second = load_image(args.frame1), load_image(args.frame2)
    if min(first.size) < MIN_FRAME_SIDE:
        raise BrushstreamError(f"{first.path}: frame is {first.size[1]}x{first.size[0]} px; flow needs at least "
                               f"{MIN_FRAME_SIDE} px per side")
    if first.size != second.size:
        raise BrushstreamError(f"{second.path}: is {second.size[1]}x{second.size[0]} px but {first.path} is "
                               f"{first.size[1]}x{first.size[0]}; the two frames must have one size")
    options = {"preset": args.preset, "scale": args.scale} if args.backend == "dis" else {}
    if args.backend == "flownet":
        options = {"weights": args.weights, "device": args.device, "scale": args.scale}
    backend = get_flow(args.backend, **options)
    start = time.perf_counter()
    with torch.inference_mode():
        flow = backend(first.image, second.image).float().cpu()
    seconds = time.perf_counter() - start
    if suffix in FLOW_SUFFIXES:
        write_flo(flow, out)
    else:
        save_image(flow_to_rgb(flow, args.max_magnitude), out)
    magnitude = flow.pow(2).sum(1).sqrt()
    if not args.quiet:
        print(f"{out}: {args.backend} flow {flow.shape[-1]}x{flow.shape[-2]}, mean |flow| {magnitude.mean():.2f} px, "
              f"max {magnitude.max():.2f} px, {seconds:.2f} s")
    return 0


def _positive_pixels(text: str) -> float:
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of pixels above 0, got {text!r}")
    return value


def add_flow_parser(sub, parser_class) -> None:
    from . import flow_backends
    from .dis import DEFAULTS, PRESETS

    f = sub.add_parser("flow", help="optical flow between two frames, as a .flo file or a colour-wheel picture",
                       description="Optical flow from FRAME1 to FRAME2 at the frames' size, in pixels.")
    f.add_argument("frame1")
    f.add_argument("frame2")
    f.add_argument("--backend", default="dis", choices=flow_backends(), help="flow backend (default dis)")
    f.add_argument("--preset", default=DEFAULTS["preset"], choices=list(PRESETS), help="DIS preset (default medium)")
    f.add_argument("--weights", default=None, help="flownet: a .safetensors file from `brushstream train flownetc` "
                                                   "(or flownets) or a manifest name; no FlowNet weights are bundled")
    f.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="dis and flownet: work at this fraction of the frame size, 0.1..1 (default 1)")
    f.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="flownet: device (default cpu)")
    f.add_argument("--max-magnitude", type=_positive_pixels, default=None, metavar="PX",
                   help="picture output: the magnitude shown fully saturated (default: the largest in the picture)")
    f.add_argument("-o", "--output", required=True, help="OUT.flo (Middlebury) or OUT.png / OUT.jpg (colour wheel)")
    f.add_argument("-q", "--quiet", action="store_true")
    f.set_defaults(func=cmd_flow)
