"""`brushstream train RECIPE ...`: flags generated from each recipe's hyper-parameters, the loop run with a
tqdm bar, and a clean one-line stop on Ctrl-C/SIGTERM (the checkpoint is kept for --resume)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path

from ..errors import BrushstreamError
from .budget import parse_minutes
from .catalogue import recipes
from .precision import PRECISIONS


def _parse_tuple(kind: type):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        try:
            return tuple(kind(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None
    return parse


def _add_recipe_flags(parser: argparse.ArgumentParser, recipe_cls) -> None:
    hints = typing.get_type_hints(recipe_cls)
    for f in dataclasses.fields(recipe_cls):
        if not f.metadata.get("cli", True):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        source = f.metadata.get("source", "project")
        paper = f.metadata.get("paper", "")
        origin = "paper" if source == "paper" else "project's choice" + (f"; paper: {paper}" if paper else "")
        # An empty default means "the recipe decides" and its help says what; printing it would show "default ,".
        shown = "" if default == "" else f"default {default}, "
        help_text = f"{f.metadata.get('help', '')} ({shown}{origin})".replace("%", "%%")
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        if f.name == "steps":   # absent: the recipe's count, or no cap under --minutes
            parser.add_argument(flag, type=hint, default=None, help=help_text)
        elif f.name == "style":
            parser.add_argument(flag, action="append", default=None, help=help_text)
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif typing.get_origin(hint) is tuple:
            parser.add_argument(flag, type=_parse_tuple(typing.get_args(hint)[0]), default=default, help=help_text)
        else:
            choices = f.metadata.get("choices") or None
            parser.add_argument(flag, type=hint, default=default, choices=choices, help=help_text)


def add_train_parser(sub, parser_class) -> None:
    t = sub.add_parser("train", help="train a network: resumable, previews, loss curve; works under torchrun")
    tsub = t.add_subparsers(dest="recipe", required=True, parser_class=parser_class)
    for name, cls in recipes().items():
        paper = " ".join((sys.modules[cls.__module__].__doc__ or "").split())
        r = tsub.add_parser(name, help=cls.summary, description=f"{cls.summary}. {paper} Interrupt with Ctrl-C "
                            f"and continue with --resume; under torchrun the global batch is split over the processes.")
        _add_recipe_flags(r, cls)
        r.add_argument("-o", "--out", required=True, help="the trained network (.safetensors)")
        r.add_argument("--resume", action="store_true", help="continue the run saved in the checkpoint")
        r.add_argument("--init-from", metavar="MODEL", help="start a new run from a trained network's weights (file "
                       "or manifest name; same architecture): fine-tuning with changed settings, which --resume refuses")
        r.add_argument("--checkpoint", help="checkpoint file (default: OUT with .ckpt for .safetensors)")
        r.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints (default 50)")
        r.add_argument("--preview-every", type=int, default=0, help="steps between preview images (0: none)")
        r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
        r.add_argument("--minutes", type=float, help="wall-clock budget for the whole run: the stages are planned to "
                       "fit it, and the run always ends with a usable file (--steps then caps the steps)")
        r.add_argument("--precision", default="auto", choices=list(PRECISIONS),
                       help="auto (default): bf16 autocast on CPUs with bfloat16 instructions and GPUs with bf16, "
                       "fp32 elsewhere; fp16 (CUDA) uses a gradient scaler")
        r.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
        r.add_argument("--threads", type=int, help="CPU threads for this process")
        r.add_argument("-q", "--quiet", action="store_true")
        r.set_defaults(func=cmd_train, recipe_cls=cls)


def cmd_train(args) -> int:
    import torch

    from .loop import TrainingStopped, fit

    cls = args.recipe_cls
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.metadata.get("cli", True)}
    values["style"] = tuple(values["style"] or ())
    explicit_steps = values.pop("steps")
    if explicit_steps is not None:
        values["steps"] = explicit_steps
    recipe = cls(**values)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise BrushstreamError(f"{out}: the output must be a .safetensors file")
    if out.is_dir():
        raise BrushstreamError(f"{out}: is a directory")
    for s in recipe.style:
        if not Path(s).is_file():
            raise BrushstreamError(f"{s}: no such style image")
    if args.checkpoint_every < 1 or args.preview_every < 0 or args.workers < 0:
        raise BrushstreamError("--checkpoint-every must be at least 1, --preview-every and --workers at least 0")
    parse_minutes(args.minutes)   # before anything is loaded
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = fit(recipe, out, checkpoint=args.checkpoint, resume=args.resume, init_from=args.init_from,
                     device=args.device, minutes=args.minutes,
                     max_steps=explicit_steps if args.minutes is not None else None, precision=args.precision,
                     checkpoint_every=args.checkpoint_every,
                     preview_every=args.preview_every, workers=args.workers, progress=not args.quiet)
    except TrainingStopped as stop:
        print(f"brushstream: {stop}", file=sys.stderr)
        return 143 if stop.signum == 15 else 130
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items())
    print(f"{out}: {result.steps} steps ({result.metadata['precision']}), {result.seconds:.0f} s this run; "
          f"final losses {losses}; loss curve and preview sheet beside it")
    return 0
