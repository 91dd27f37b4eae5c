"""`brushstream ...` commands. Every user-facing failure is one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from .errors import BrushstreamError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors follow the same one-line, exit 2 rule
        # main() prints "brushstream: error: ", so only the subcommand is named here ("stylize: argument --size ...")
        command = self.prog.partition(" ")[2]
        raise BrushstreamError(f"{command}: {message}" if command else message)


def _style_weights(text: str | None) -> list[float] | None:
    from .methods.style_spec import parse_style_weights  # the one parser every host uses

    return parse_style_weights(text)


def _is_folder_name(text: str) -> bool:
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def _output_paths(contents: list[Path], out_text: str, method: str, folder_input: bool = False) -> list[Path]:
    """One output per input: ``-o`` is the file for a single photo, else a folder of ``<stem>_<method>.png``.

    Inputs that would share a name (``cat.jpg`` and ``cat.png``, or two folders' ``cat.jpg``) get their
    extension, then a number, so no output of one run replaces another.
    """
    if out_text.strip() == "-":
        raise BrushstreamError("-o -: writing to standard output is not supported; give a file or folder name")
    out = Path(out_text)
    if len(contents) == 1 and not folder_input and not _is_folder_name(out_text):
        if not out.suffix:
            raise BrushstreamError(f"-o {out_text}: give a file name with an image extension (.png, .jpg, ...) "
                                   f"or a folder name ending in /")
        return [out]
    if out.exists() and not out.is_dir():
        raise BrushstreamError(f"{out}: several inputs need an output directory, and this is a file")
    from .io.image import READ_SUFFIXES, WRITE_SUFFIXES

    if not out.exists() and not _is_folder_name(out_text) and out.suffix.lower() in READ_SUFFIXES | WRITE_SUFFIXES:
        inputs = "a folder input needs" if folder_input else f"{len(contents)} inputs need"
        raise BrushstreamError(f"-o {out_text}: {inputs} an output folder, and this names an image file; "
                               f"give a folder name ending in /")
    stems = [c.stem for c in contents]
    names: list[str] = []
    for c in contents:
        base = c.stem if stems.count(c.stem) == 1 else f"{c.stem}_{c.suffix.lstrip('.').lower()}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return [out / f"{n}_{method}.png" for n in names]


def _device(name: str):
    from .devices import resolve_device

    return resolve_device(name)


def _stylize_settings(args) -> dict:
    """The common stylize options, checked before anything is loaded."""
    from .methods import STYLIZE_OPTIONS

    values = {"strength": args.strength, "preserve_color": args.preserve_color, "precision": args.precision}
    return {o.name: o.parse(values[o.name]) for o in STYLIZE_OPTIONS}


def _check_sizes(args) -> None:
    for flag in ("size", "style_size"):
        value = getattr(args, flag)
        if value is not None and not 16 <= value <= 16384:
            raise BrushstreamError(f"--{flag.replace('_', '-')} must be between 16 and 16384 px, got {value}")


def _pick_method(args) -> None:
    """No --method: the method the --model file or name was made for (a style someone shared, imported or not), else
    the default one."""
    from .cli_options import DEST_PREFIX
    from .methods import DEFAULT_METHOD, method_for_weights

    if args.method is None:
        model = getattr(args, DEST_PREFIX + "model", None)
        args.method = (method_for_weights(model) if model else None) or DEFAULT_METHOD


def cmd_stylize(args) -> int:
    from . import api
    from .cli_options import given_options, method_options
    from .io.image import check_output_path, image_size, list_images
    from .methods import get

    _pick_method(args)
    cls = get(args.method)
    options = method_options(cls, given_options(args))
    settings = _stylize_settings(args)
    _check_sizes(args)
    weights = _style_weights(args.style_weights)
    styles = list(args.style or [])
    if args.texture:
        return _texture(args, cls, options, styles, weights)
    contents = [p for c in args.content for p in (list_images(c) if Path(c).is_dir() else [Path(c)])]
    if not contents and not styles:
        contents = [api.SAMPLE_CONTENT]
        styles = [api.SAMPLE_STYLE] if cls.capabilities.arbitrary_style else []
        print(f"brushstream: no input given; stylizing the bundled sample {contents[0].name} "
              f"with {styles[0].name if styles else 'the model' + chr(39) + 's style'}", file=sys.stderr)
    if not contents:
        raise BrushstreamError("no content image given")
    if not styles and not (cls.capabilities.fixed_styles or cls.capabilities.trained_styles):
        raise BrushstreamError("no style image given (--style FILE)")
    # Everything the user gave is checked before any weights are looked up or any work is done.
    outputs = _output_paths(contents, args.output, args.method, any(Path(c).is_dir() for c in args.content))
    for o in outputs:
        check_output_path(o)
    api.refuse_overwriting_inputs(outputs, [*contents, *styles, args.mask])
    if args.mask:
        image_size(args.mask, decode=True)
    budget = api.budget_of(args.method)
    bad = []
    for content in contents:
        try:
            api.check_content(content, args.size, budget)
        except BrushstreamError as exc:
            if len(contents) == 1:
                raise
            bad.append(str(exc))
    if bad:  # refuse the batch before any work: no run that writes some outputs and then stops on a bad input
        for line in bad[:-1]:
            print(f"brushstream: error: {line}", file=sys.stderr)
        raise BrushstreamError(f"{bad[-1]} ({len(bad)} of {len(contents)} inputs unusable; nothing written)")
    todo, failed = list(zip(contents, outputs)), 0
    named = cls.capabilities.fixed_styles or cls.capabilities.trained_styles   # "--style 2" may name a trained style
    api.prepare_styles([s for s in styles if not named or Path(s).is_file()], args.style_size)  # before any loading
    model = api.load(args.method, progress=not args.quiet, **options).to(_device(args.device))
    code = model.encode_style(api.style_for(model, styles, args.style_size), weights)
    for content, out in todo:
        try:
            api.stylize_with(model, code, content, size=args.size, mask=args.mask, output=out, **settings)
            if not args.quiet:
                print(f"{content} -> {out}", file=sys.stderr)
        except BrushstreamError as exc:
            if len(contents) == 1:
                raise
            print(f"brushstream: error: {exc}", file=sys.stderr)
            failed += 1
    return EXIT_USAGE if failed else 0


def _texture(args, cls, options: dict, styles: list[str], weights) -> int:
    """Texture synthesis from noise (no content image), for methods that declare the capability."""
    from . import api
    from .io.image import check_output_path, save_image
    from .methods import available
    from .methods.base import check_pixels

    if args.content:
        raise BrushstreamError("--texture makes an image from noise; give no content image")
    if not cls.capabilities.texture_synthesis:
        able = [n for n, c in available().items() if c.capabilities.texture_synthesis]
        raise BrushstreamError(f"--texture works with --method {' or '.join(able)}, not {args.method}")
    if not styles:
        raise BrushstreamError("no style image given (--style FILE)")
    try:
        w, h = (int(v) for v in args.texture.lower().split("x"))
    except ValueError:
        raise BrushstreamError(f"--texture must be WIDTHxHEIGHT, e.g. 512x512, got {args.texture!r}") from None
    if min(w, h) < 16:
        raise BrushstreamError(f"--texture {args.texture}: each side must be at least 16 px")
    check_pixels((h, w), api.budget_of(args.method), args.method)
    out = check_output_path(args.output)
    api.refuse_overwriting_inputs([out], styles)
    style_images = api.prepare_styles(styles, args.style_size)
    model = api.load(args.method, progress=not args.quiet, **options).to(_device(args.device))
    code = model.encode_style(style_images, weights)
    save_image(model.synthesize(code, (h, w)), out)
    return 0


def cmd_video(args) -> int:
    from .cli_options import given_options, method_options
    from .methods import get
    from .video_stylize import stylize_video

    _pick_method(args)
    options = method_options(get(args.method), given_options(args))
    settings = _stylize_settings(args)
    # --size, --max-frames, --start and --temporal-strength are checked once, by stylize_video, before any work
    flow_options = {"preset": args.flow_preset, "scale": args.flow_scale} if args.flow == "dis" else {}
    result = stylize_video(args.input, args.style, args.output, method=args.method,
                           style_weights=_style_weights(args.style_weights),
                           temporal=args.temporal, temporal_strength=args.temporal_strength, flow=args.flow,
                           flow_options=flow_options, size=args.size, start=args.start, max_frames=args.max_frames,
                           style_size=args.style_size, device=_device(args.device), measure=args.measure,
                           progress=not args.quiet, **settings, **options)
    if result.scene_cuts and not args.quiet:
        print(f"scene cuts at frames {', '.join(map(str, result.scene_cuts))}: the temporal state restarted there",
              file=sys.stderr)
    print(f"{result.output}")
    if result.warping:
        w = result.warping
        print(f"warping error {w['warping_error']:.3e} (the input's own {w['input_warping_error']:.3e}, "
              f"excess {w['excess']:.3e}; flow: {args.measure})")
    print(f"done: {result.frames} frames, {result.seconds:.1f} s, {result.fps:.2f} fps")
    return 0


def cmd_methods(args) -> int:
    """Every registered method, what it can do and its options: the same data the hosts build from."""
    from .methods import STYLIZE_OPTIONS, available

    for name, cls in available().items():
        caps = cls.capabilities
        flags = [f.name for f in dataclasses.fields(caps)
                 if f.type in (bool, "bool") and f.name != "style_blend" and getattr(caps, f.name)]
        print(f"{name}\t{cls.summary}")
        print(f"    can: {', '.join(flags)}" + (f"; styles: {', '.join(caps.fixed_styles)}" if caps.fixed_styles else ""))
        if not caps.video_native:
            print(f"    video: flow-guided temporal blend, default --temporal-strength {cls.temporal_strength:g}")
        if cls.needs_download:
            print(f"    downloads: {cls.needs_download}")
        for opt in cls.options:
            print(f"    {opt.flag}: {opt.describe()}")
    print("every method: " + "; ".join(f"{o.flag}: {o.describe()}" for o in STYLIZE_OPTIONS))
    print("training (brushstream train, every recipe): the VGG16 ImageNet weights as the loss network")
    return 0


def cmd_eval(args) -> int:
    from .cli_options import given_options, method_options
    from .evaluate import run_eval
    from .io.image import image_size
    from .methods import get

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    classes = {m: get(m) for m in methods}
    given = given_options(args)
    # A method option applies to the listed methods that declare it; one that none declares is an error.
    for name in given:
        if not any(name in {o.name for o in c.options} for c in classes.values()):
            raise BrushstreamError(f"--{name.replace('_', '-')} does not apply to any of --methods {','.join(methods)}")
    opts = {m: method_options(c, {k: v for k, v in given.items() if k in {o.name for o in c.options}})
            for m, c in classes.items()}
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise BrushstreamError(f"{out}: the report goes in a directory, and this is a file")
    if not 16 <= args.size <= 4096:
        raise BrushstreamError(f"--size must be between 16 and 4096 px, got {args.size}")
    contents, styles = [Path(c) for c in args.content], [Path(s) for s in args.style]
    for f in [*contents, *styles]:
        image_size(f)
    report = run_eval(contents, styles, methods, out, size=args.size, method_options=opts)
    for name, summary in report["summary"].items():
        print(f"{name}\tgram ratio {summary['gram_ratio']:.3f}\tmean/std ratio {summary['meanstd_ratio']:.3f}"
              f"\tcontent {summary['content']:.3f}\ts/img {summary['seconds']:.2f}")
    print(f"report: {out / 'report.json'}, sheet: {out / 'sheet.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .cli_options import DEST_PREFIX, add_method_options, argparse_kwargs
    from .flow import flow_backends
    from .flow.dis import DEFAULTS as DIS_DEFAULTS
    from .flow.dis import PRESETS as DIS_PRESETS
    from .methods import DEFAULT_METHOD, STYLIZE_OPTIONS, available

    p = _Parser(prog="brushstream", description="Neural style transfer for stills, video and live streams.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    methods = available()
    s = sub.add_parser("stylize", help="stylize photos with one or more style images",
                       description="Stylize photos. Method options below are generated from each method's "
                                   "declared options (`brushstream methods` lists them).")
    s.add_argument("content", nargs="*", help="content images or folders (none: the bundled sample)")
    s.add_argument("--style", action="append", help="style image; repeat to blend several")
    s.add_argument("--style-weights", help="blend weights, e.g. 0.7,0.3")
    s.add_argument("--method", choices=list(methods), help=f"default: the one --model was made for, else "
                   f"{DEFAULT_METHOD}. " + "; ".join(f"{n}: {c.summary}" for n, c in methods.items()))
    for opt in STYLIZE_OPTIONS:
        s.add_argument(opt.flag, **argparse_kwargs(opt, default=opt.default))
    s.add_argument("--size", type=int, help="longer side in px to work and write at (default: the content's)")
    s.add_argument("--style-size", type=int, default=512, help="longer side the style is reduced to (default 512)")
    s.add_argument("--mask", help="two styles: white takes the first, black the second (same aspect as the content)")
    s.add_argument("--texture", metavar="WxH", help="no content: synthesize a WxH texture of the style")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("-o", "--output", required=True, help="output file (one input) or directory (ends in /)")
    s.add_argument("-q", "--quiet", action="store_true")
    add_method_options(s, methods)
    s.set_defaults(func=cmd_stylize)

    v = sub.add_parser("video", help="stylize a video clip (file, GIF or folder of frames), keeping timing and audio",
                       description="Stylize a clip frame by frame through one stream state: the previous output, "
                                   "warped by optical flow, is blended in where the flow is reliable, so the "
                                   "result does not flicker. The last line printed is 'done: N frames, T s, F fps' "
                                   "(T counts processing only).")
    v.add_argument("input", help="video file (mp4, mov, mkv, webm, avi), animated GIF or folder of frames")
    v.add_argument("--style", action="append",
                   help="style image, or a trained style's name or index; repeat to blend several")
    v.add_argument("--style-weights", help="blend weights, e.g. 0.7,0.3")
    v.add_argument("--method", choices=list(methods), help=f"default: the one --model was made for, else "
                   f"{DEFAULT_METHOD}. " + "; ".join(f"{n}: {c.summary}" for n, c in methods.items()))
    v.add_argument("--model", dest=DEST_PREFIX + "model", metavar="NAME",
                   help="trained model of the method (file, manifest name or Hub id), for methods that have them")
    v.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=True,
                   help="carry a stream state from frame to frame (default on); --no-temporal: each frame alone")
    v.add_argument("--temporal-strength", type=float, metavar="A",
                   help="how much of the warped previous output is kept where the flow is reliable, 0..1 "
                        "(default: the method's, " + ", ".join(f"{n} {c.temporal_strength:g}" for n, c in methods.items()
                                                               if not c.capabilities.video_native) + ")")
    v.add_argument("--flow", default="dis", choices=flow_backends(), help="optical flow backend (default dis)")
    v.add_argument("--flow-preset", default=DIS_DEFAULTS["preset"], choices=list(DIS_PRESETS),
                   help=f"DIS preset (default {DIS_DEFAULTS['preset']})")
    v.add_argument("--flow-scale", type=float, default=DIS_DEFAULTS["scale"], metavar="S",
                   help=f"DIS works at this fraction of the frame size, 0.1..1 (default {DIS_DEFAULTS['scale']})")
    for opt in STYLIZE_OPTIONS:
        v.add_argument(opt.flag, **argparse_kwargs(opt, default=opt.default))
    v.add_argument("--size", type=int, help="output height in px (default: the input's); the width keeps the aspect")
    v.add_argument("--style-size", type=int, default=512, help="longer side the style is reduced to (default 512)")
    v.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="skip to this time in the clip")
    v.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    v.add_argument("--measure", nargs="?", const="farneback", choices=flow_backends(), metavar="FLOW",
                   help="also print the output's warping error beside the input's own, graded with this flow "
                        "backend (default farneback, so the grade does not reuse the blend's DIS flow)")
    v.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    v.add_argument("-o", "--output", required=True,
                   help="output video (.mp4, .mov, .mkv: H.264) or PNG frames as a pattern, e.g. frames/f_%%05d.png")
    v.add_argument("-q", "--quiet", action="store_true")
    add_method_options(v, methods)
    v.set_defaults(func=cmd_video)

    m = sub.add_parser("methods", help="list the methods, what they can do and their options")
    m.set_defaults(func=cmd_methods)

    e = sub.add_parser("eval", help="measure style/content distances and write a report + comparison sheet")
    e.add_argument("content", nargs="+")
    e.add_argument("--style", action="append", required=True)
    e.add_argument("--methods", default="adain,wct,swap", help=f"comma-separated, from {', '.join(methods)}")
    e.add_argument("--size", type=int, default=384)
    e.add_argument("-o", "--output", required=True, help="report directory")
    add_method_options(e, methods)
    e.set_defaults(func=cmd_eval)

    from .weights_command import add_weights_parser
    add_weights_parser(sub, _Parser)

    from .train.command import add_train_parser
    add_train_parser(sub, _Parser)
    from .flow.command import add_flow_parser
    add_flow_parser(sub, _Parser)
    _add_plugin_commands(sub)
    return p


def _add_plugin_commands(sub) -> None:
    """Commands of the hosts built on core (``brushstream obs``), found through the ``brushstream.commands`` entry
    point group so that core never imports them."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group="brushstream.commands"), key=lambda e: e.name):
        entry.load()(sub, _Parser)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("BRUSHSTREAM_DEBUG") == "1"
    from .io.atomic import exit_cleanly_on_sigterm

    exit_cleanly_on_sigterm()  # SIGTERM unwinds like Ctrl-C: no temporary file is left behind
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except BrushstreamError as exc:
        print(f"brushstream: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("brushstream: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code == 143:  # SIGTERM (see exit_cleanly_on_sigterm): cleaned up, say so in one line
            print("brushstream: terminated", file=sys.stderr)
        raise
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
