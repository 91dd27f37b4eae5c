"""`brushstream ...` commands. Every user-facing failure is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import BrushstreamError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors follow the same one-line, exit 2 rule
        raise BrushstreamError(f"{self.prog}: {message}")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BrushstreamError(f"--style-weights must be numbers separated by commas, got {text!r}") from None


def _method_options(args) -> dict:
    opts = {}
    if args.method == "gatys":
        opts.update(steps=args.steps or 300, seed=args.seed, progress=not args.quiet)
        if args.optimizer:
            opts["optimizer"] = args.optimizer
        if args.scales:
            opts["scales"] = tuple(_floats(args.scales))
        if args.init:
            opts["init"] = args.init
        for flag in ("style_layers", "content_layers"):
            if getattr(args, flag):
                opts[flag] = tuple(getattr(args, flag).split(","))
        for flag in ("style_weight", "content_weight", "tv_weight", "lr"):
            if getattr(args, flag) is not None:
                opts[flag] = getattr(args, flag)
    if args.method == "swap" and args.patch_size:
        opts["patch_size"] = args.patch_size
    if args.method == "wct" and args.levels:
        opts["levels"] = tuple(args.levels.split(","))
    return opts


def _output_paths(contents: list[Path], out: Path, method: str, folder_input: bool = False) -> list[Path]:
    if len(contents) == 1 and not folder_input and not (out.exists() and out.is_dir()) and out.suffix:
        return [out]
    if out.exists() and not out.is_dir():
        raise BrushstreamError(f"{out}: several inputs need an output directory, and this is a file")
    return [out / f"{c.stem}_{method}.png" for c in contents]


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BrushstreamError("--device cuda: no CUDA device is available to this PyTorch build")
    return torch.device(name)


def cmd_stylize(args) -> int:
    from . import api
    from .image import check_output_path

    from .image import list_images

    contents = [p for c in args.content for p in (list_images(c) if Path(c).is_dir() else [Path(c)])]
    styles = list(args.style or [])
    if args.texture:
        return _texture(args, styles)
    if not contents and not styles:
        contents, styles = [api.SAMPLE_CONTENT], [api.SAMPLE_STYLE]
        print(f"brushstream: no input given; stylizing the bundled sample {contents[0].name} "
              f"with {styles[0].name}", file=sys.stderr)
    if not contents:
        raise BrushstreamError("no content image given")
    if not styles:
        raise BrushstreamError("no style image given (--style FILE)")
    for s in styles:
        if not Path(s).exists():
            raise BrushstreamError(f"{s}: no such style file")
    if args.size is not None and args.size < 16:
        raise BrushstreamError(f"--size must be at least 16 px, got {args.size}")
    weights = _floats(args.style_weights) if args.style_weights else None
    outputs = _output_paths(contents, Path(args.output), args.method, any(Path(c).is_dir() for c in args.content))
    for o in outputs:
        check_output_path(o)
    model = api.load(args.method, **_method_options(args)).to(_device(args.device))
    code = model.encode_style(api.prepare_styles(styles, args.style_size), weights)
    failed = 0
    for content, out in zip(contents, outputs):
        try:
            api.stylize_with(model, code, content, strength=args.strength, preserve_color=args.preserve_color,
                             size=args.size, mask=args.mask, output=out, precision=args.precision)
            if not args.quiet:
                print(f"{content} -> {out}", file=sys.stderr)
        except BrushstreamError as exc:
            if len(contents) == 1:
                raise
            print(f"brushstream: error: {exc}", file=sys.stderr)
            failed += 1
    return EXIT_USAGE if failed else 0


def _texture(args, styles: list[str]) -> int:
    """Texture synthesis from noise (no content image): WCT's cascade or Gatys from a noise start."""
    import torch

    from . import api
    from .image import check_output_path, save_image

    if args.content:
        raise BrushstreamError("--texture makes an image from noise; give no content image")
    if args.method not in ("wct", "gatys"):
        raise BrushstreamError(f"--texture works with --method wct or gatys, not {args.method}")
    if not styles:
        raise BrushstreamError("no style image given (--style FILE)")
    try:
        w, h = (int(v) for v in args.texture.lower().split("x"))
    except ValueError:
        raise BrushstreamError(f"--texture must be WIDTHxHEIGHT, e.g. 512x512, got {args.texture!r}") from None
    out = check_output_path(args.output)
    options = _method_options(args)
    if args.method == "gatys":
        options.update(init="noise", content_weight=0.0)  # pure Gram matching (Gatys et al. 2015 textures)
    model = api.load(args.method, **options).to(_device(args.device))
    code = model.encode_style(api.prepare_styles(styles, args.style_size), _floats(args.style_weights) if args.style_weights else None)
    if args.method == "wct":
        image = model.synthesize(code, (h, w), seed=args.seed)
    else:  # the "content" only sets the size: its weight is zero and the start is seeded noise
        image = model.stylize(torch.full((1, 3, h, w), 0.5), code)
    save_image(image, out)
    return 0


def cmd_weights(args) -> int:
    from . import weights

    if args.action == "list":
        for entry in weights.load_manifest().values():
            where = "bundled" if entry.bundled else f"hub:{entry.hub_repo_id}/{entry.hub_filename}"
            size = f"{entry.bytes / 1e6:.1f} MB" if entry.bytes >= 1e5 else f"{entry.bytes / 1e3:.1f} kB"
            print(f"{entry.name}\t{entry.method}\t{size}\t{entry.licence}\t{where}")
        return 0
    if args.action == "verify":
        rows = weights.verify(args.name)
        for name, status, where in rows:
            print(f"{name}\t{status}\t{where}")
        return EXIT_USAGE if any(status == "MISMATCH" for _, status, _ in rows) else 0
    for path in weights.pull(args.name):
        print(path)
    return 0


def cmd_train(args) -> int:
    from .train.decoder_recipe import DecoderRecipe, train_decoder

    recipe = DecoderRecipe(level=args.level, data=args.data, steps=args.steps, batch=args.batch, crop=args.crop)
    meta = train_decoder(recipe, args.output, checkpoint=args.checkpoint, progress=not args.quiet)
    print(f"{args.output}: reconstruction PSNR {meta['psnr_content_eval']} dB on content_eval")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import run_eval

    contents = [Path(c) for c in args.content]
    for f in [*contents, *[Path(s) for s in args.style]]:
        if not f.is_file():
            raise BrushstreamError(f"{f}: no such file")
    opts = {"gatys": {"steps": args.steps, "scales": (0.5, 1.0), "progress": False}}
    report = run_eval(contents, [Path(s) for s in args.style], args.methods.split(","), Path(args.output),
                      size=args.size, method_options=opts)
    for name, summary in report["summary"].items():
        print(f"{name}\tgram ratio {summary['gram_ratio']:.3f}\tmean/std ratio {summary['meanstd_ratio']:.3f}"
              f"\tcontent {summary['content']:.3f}\ts/img {summary['seconds']:.2f}")
    print(f"report: {Path(args.output) / 'report.json'}, sheet: {Path(args.output) / 'sheet.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="brushstream", description="Neural style transfer for stills, video and live streams.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("stylize", help="stylize photos with one or more style images")
    s.add_argument("content", nargs="*", help="content images (none: the bundled sample)")
    s.add_argument("--style", action="append", help="style image; repeat to blend several")
    s.add_argument("--style-weights", help="blend weights, e.g. 0.7,0.3")
    s.add_argument("--method", default="adain", choices=["adain", "wct", "swap", "gatys"])
    s.add_argument("--strength", type=float, default=1.0, help="0 = content, 1 = full style")
    s.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    s.add_argument("--size", type=int, help="longer side in px to work and write at (default: the content's)")
    s.add_argument("--style-size", type=int, default=512, help="longer side the style is reduced to")
    s.add_argument("--mask", help="AdaIN with two styles: white takes the first, black the second")
    s.add_argument("--steps", type=int, help="Gatys: optimisation steps (default 300)")
    s.add_argument("--optimizer", choices=["lbfgs", "adam"], help="Gatys optimiser")
    s.add_argument("--init", choices=["content", "noise"], help="Gatys start image")
    s.add_argument("--scales", help="Gatys coarse-to-fine scales, e.g. 0.5,1")
    s.add_argument("--style-layers", help="Gatys VGG16 style layers (default relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)")
    s.add_argument("--content-layers", help="Gatys VGG16 content layers (default relu4_2)")
    s.add_argument("--style-weight", type=float, help="Gatys style weight (default 5; higher washes out the content)")
    s.add_argument("--content-weight", type=float, help="Gatys content weight (default 1)")
    s.add_argument("--tv-weight", type=float, help="Gatys total-variation weight (default 0)")
    s.add_argument("--lr", type=float, help="Gatys Adam learning rate (default 0.02)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--patch-size", type=int, help="Style-Swap patch size (odd, default 3)")
    s.add_argument("--levels", help="WCT levels, e.g. relu3_1,relu2_1,relu1_1")
    s.add_argument("--texture", metavar="WxH", help="no content: synthesize a WxH texture of the style (wct, gatys)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="bf16: bfloat16 autocast, faster on recent CPUs and GPUs (not for gatys)")
    s.add_argument("-o", "--output", required=True, help="output file (one input) or directory")
    s.add_argument("-q", "--quiet", action="store_true")
    s.set_defaults(func=cmd_stylize)

    e = sub.add_parser("eval", help="measure style/content distances and write a report + comparison sheet")
    e.add_argument("content", nargs="+")
    e.add_argument("--style", action="append", required=True)
    e.add_argument("--methods", default="adain,wct,swap")
    e.add_argument("--size", type=int, default=384)
    e.add_argument("--steps", type=int, default=60, help="Gatys steps")
    e.add_argument("-o", "--output", required=True, help="report directory")
    e.set_defaults(func=cmd_eval)

    w = sub.add_parser("weights", help="list, verify or download weight files")
    w.add_argument("action", choices=["list", "verify", "pull"])
    w.add_argument("name", nargs="?", help="manifest name (default: all)")
    w.set_defaults(func=cmd_weights)

    t = sub.add_parser("train", help="train a network (resumable with --checkpoint)")
    tsub = t.add_subparsers(dest="what", required=True, parser_class=_Parser)
    d = tsub.add_parser("decoder", help="reconstruction decoder for relu2_1 / relu1_1 (WCT cascade)")
    d.add_argument("--level", required=True, choices=["relu2_1", "relu1_1"])
    d.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "content"))
    d.add_argument("--steps", type=int, default=2500)
    d.add_argument("--batch", type=int, default=8)
    d.add_argument("--crop", type=int, default=192)
    d.add_argument("--checkpoint", help="resume from / save to this file")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("BRUSHSTREAM_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BrushstreamError as exc:
        print(f"brushstream: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("brushstream: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `brushstream weights list | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print("brushstream: error: out of memory; use a smaller --size", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # never a traceback for users; --debug shows it
        if debug:
            raise
        print(f"brushstream: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
              f"(rerun with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
