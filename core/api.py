"""The small Python API that mirrors the CLI: ``brushstream.load(...)``, ``brushstream.stylize(...)`` and
``brushstream.load_image(...)``. Inputs are checked (headers, sizes, budget, output path) before any
weights are looked up, and no output ever replaces one of the inputs.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import torch

from .errors import BrushstreamError
from .hub.weights import looks_like_path
from .io.image import LoadedImage, as_unit_range, check_output_path, image_size, load_image, save_image
from .methods import DEFAULT_METHOD, StyleMethod, build, get
from .methods.base import max_pixels_override
from .ops.resize import long_side_size, resize_long_side, resize_to

ImageLike = Union[str, os.PathLike, torch.Tensor]
SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
SAMPLE_CONTENT = SAMPLES / "chelsea.jpg"
SAMPLE_STYLE = SAMPLES / "starry_night.jpg"
DEFAULT_STYLE_SIZE = 512
MIN_SIDE = 16
# A mask is resized to the content; a different aspect ratio would distort it, so it is refused.
MASK_ASPECT_TOLERANCE = 0.02


def load(method: str = DEFAULT_METHOD, **options) -> StyleMethod:
    """Build a style method by name (see ``brushstream methods``) with its verified weights and options."""
    return build(method, **options)


def budget_of(method: str | StyleMethod) -> int:
    """Pixels per image ``method`` may process, known before its weights are loaded."""
    if isinstance(method, StyleMethod):
        return method.budget
    override = max_pixels_override()
    return override if override is not None else get(method).default_max_pixels


def check_content(path: str | os.PathLike, size: int | None, budget: int) -> tuple[int, int]:
    """Every check of a content file before any work: image.py's checks (the budget included, and a full
    decode, since truncation past the header shows only there) and the minimum size; returns the (H, W)
    it will be stylized at."""
    h, w = long_side_size(*image_size(path, long_side=size, max_pixels=budget, decode=True), size)
    if min(h, w) < MIN_SIDE:
        raise BrushstreamError(f"{path}: image would be {w}x{h} px; at least {MIN_SIDE} px per side is needed")
    return h, w


def _as_loaded(image: ImageLike, long_side: int | None = None, max_pixels: int | None = None) -> LoadedImage:
    if isinstance(image, torch.Tensor):
        t = as_unit_range(image, "image tensor")
        t = t if t.dim() == 4 else t.unsqueeze(0)
        if long_side:
            t = resize_long_side(t.float(), long_side)
        return LoadedImage(t.float(), None, Path("<tensor>"), 8, "tensor")
    return load_image(image, long_side=long_side, max_pixels=max_pixels)


def _check_min_size(img: LoadedImage) -> None:
    h, w = img.size
    if min(h, w) < MIN_SIDE:
        raise BrushstreamError(f"{img.path}: image is {w}x{h} px; at least {MIN_SIDE} px per side is needed")


def prepare_styles(styles: ImageLike | Sequence[ImageLike], style_size: int | None = DEFAULT_STYLE_SIZE) -> list[torch.Tensor]:
    """Load style images and bound their size (their statistics, not their pixels, are what matter)."""
    if isinstance(styles, (str, os.PathLike, torch.Tensor)):
        styles = [styles]
    out = []
    for s in styles:
        if isinstance(s, torch.Tensor):
            img = _as_loaded(s)
        else:
            long_side = style_size if style_size and max(image_size(s)) > style_size else None
            img = _as_loaded(s, long_side)
        _check_min_size(img)
        x = img.image
        if style_size and max(x.shape[-2:]) > style_size:
            x = resize_long_side(x, style_size)
        out.append(x)
    return out


def _is_style_name(style) -> bool:
    """A trained style's name or index ("udnie", "3"), not an image file (core.hub.weights.looks_like_path)."""
    return isinstance(style, str) and not looks_like_path(style)


def style_for(model: StyleMethod, styles: ImageLike | Sequence[ImageLike] | None,
              style_size: int | None = DEFAULT_STYLE_SIZE):
    """What ``model.encode_style`` takes for the styles a user gave: image files or tensors, or names/indices
    of the model's trained styles ("3", "starry_night"); nothing means the first trained style."""
    if styles is None or isinstance(styles, (str, os.PathLike, torch.Tensor)):
        styles = [] if styles is None else [styles]
    trained = model.capabilities.fixed_styles
    if not styles:
        if not trained:
            raise BrushstreamError(f"{model.name} needs a style image (--style FILE)")
        return [0]
    names = [s for s in styles if _is_style_name(s)]
    if not names:
        return prepare_styles(list(styles), style_size)
    if len(names) < len(styles):
        raise BrushstreamError("give either style image files or trained style names, not both")
    if not trained:
        raise BrushstreamError(f"{names[0]}: no such file")
    refs = [int(str(s)) if str(s).isdigit() else str(s) for s in names]
    return refs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def refuse_overwriting_inputs(outputs: Sequence[str | os.PathLike], inputs: Sequence[ImageLike | None]) -> None:
    """Never write over an input, and never let two outputs of one run share a path."""
    files = [Path(i) for i in inputs if isinstance(i, (str, os.PathLike))]
    seen: list[Path] = []
    for out in map(Path, outputs):
        for f in files:
            if _same_file(out, f):
                raise BrushstreamError(f"{out}: is one of the inputs; refusing to write over it (choose another -o)")
        for other in seen:
            if _same_file(out, other):
                raise BrushstreamError(f"{out}: two outputs of this run would share this path")
        seen.append(out)


def load_mask(mask: ImageLike, size: tuple[int, int]) -> torch.Tensor:
    """A mask image (white = first style) as (1, 1, H, W) at the content's size; the aspect ratio must match."""
    img = _as_loaded(mask)
    mh, mw = img.size
    h, w = size
    if abs((mw / mh) / (w / h) - 1) > MASK_ASPECT_TOLERANCE:
        raise BrushstreamError(f"{img.path}: mask is {mw}x{mh} px but the content is {w}x{h} px; "
                               f"the mask must have the content's aspect ratio (it is then resized to fit)")
    return resize_to(img.image.mean(dim=1, keepdim=True), size).clamp(0, 1)


def stylize(content: ImageLike, style: ImageLike | Sequence[ImageLike], *, method: str | StyleMethod = DEFAULT_METHOD,
            style_weights: Sequence[float] | None = None, strength: float = 1.0, preserve_color: bool = False,
            size: int | None = None, style_size: int | None = DEFAULT_STYLE_SIZE, mask: ImageLike | None = None,
            output: str | os.PathLike | None = None, precision: str = "fp32", **options) -> torch.Tensor:
    """Stylize one image; returns (1, 3, H, W) in [0, 1] and writes ``output`` atomically if given.

    ``size`` is the longer side to work and write at (default: the content's own size). ``options``
    are the method's own (``brushstream methods`` lists them, e.g. ``steps`` for Gatys).
    """
    if output is not None:
        check_output_path(output)
        refuse_overwriting_inputs([output], [content, *(style if isinstance(style, (list, tuple)) else [style]), mask])
    if isinstance(method, StyleMethod) and options:
        raise BrushstreamError(f"options {sorted(options)} are set when a method is built; pass them to load()")
    if not isinstance(content, torch.Tensor):
        check_content(content, size, budget_of(method))
    given = list(style) if isinstance(style, (list, tuple)) else [style]
    names = any(_is_style_name(s) for s in given)    # "udnie" or "3": a trained style, as the CLI takes it
    styles = None if names else prepare_styles(given, style_size)   # files are checked before any loading
    model = method if isinstance(method, StyleMethod) else load(method, **options)
    code = model.encode_style(style_for(model, given, style_size) if names else styles, style_weights)
    return stylize_with(model, code, content, strength=strength, preserve_color=preserve_color, size=size,
                        mask=mask, output=output, precision=precision)


def stylize_with(model: StyleMethod, code, content: ImageLike, *, strength: float = 1.0,
                 preserve_color: bool = False, size: int | None = None, mask: ImageLike | None = None,
                 output: str | os.PathLike | None = None, precision: str = "fp32") -> torch.Tensor:
    """Stylize with an already encoded style (many contents, one style code)."""
    if output is not None:
        check_output_path(output)
    img = _as_loaded(content, size, model.budget)   # a file over the budget is refused before decoding
    _check_min_size(img)
    m = None if mask is None else load_mask(mask, img.size)
    y = model.stylize(img.image, code, strength=strength, preserve_color=preserve_color, mask=m, precision=precision)
    if output is not None:
        save_image(y, output, alpha=img.alpha, bit_depth=img.bit_depth)
    return y
