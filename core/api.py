"""The small Python API that mirrors the CLI: ``brushstream.load(...)`` and ``brushstream.stylize(...)``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import torch

from .errors import BrushstreamError
from .image import LoadedImage, check_output_path, load_image, save_image
from .methods import StyleMethod, build
from .ops.resize import resize_long_side, resize_to

ImageLike = Union[str, os.PathLike, torch.Tensor]
SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
SAMPLE_CONTENT = SAMPLES / "chelsea.jpg"
SAMPLE_STYLE = SAMPLES / "starry_night.jpg"
DEFAULT_STYLE_SIZE = 512
MIN_SIDE = 16


def load(method: str = "adain", **options) -> StyleMethod:
    """Build a style method by name (``adain``, ``wct``, ``swap``, ``gatys``) with its verified weights."""
    return build(method, **options)


def _as_loaded(image: ImageLike) -> LoadedImage:
    if isinstance(image, torch.Tensor):
        t = image if image.dim() == 4 else image.unsqueeze(0)
        return LoadedImage(t.float(), None, Path("<tensor>"), 8, "tensor")
    return load_image(image)


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
        img = _as_loaded(s)
        _check_min_size(img)
        x = img.image
        if style_size and max(x.shape[-2:]) > style_size:
            x = resize_long_side(x, style_size)
        out.append(x)
    return out


def stylize(content: ImageLike, style: ImageLike | Sequence[ImageLike], *, method: str | StyleMethod = "adain",
            style_weights: Sequence[float] | None = None, strength: float = 1.0, preserve_color: bool = False,
            size: int | None = None, style_size: int | None = DEFAULT_STYLE_SIZE, mask: ImageLike | None = None,
            output: str | os.PathLike | None = None, **options) -> torch.Tensor:
    """Stylize one image; returns (1, 3, H, W) in [0, 1] and writes ``output`` atomically if given.

    ``size`` is the longer side to work and write at (default: the content's own size). ``options``
    go to the method's ``stylize`` (e.g. ``steps`` for Gatys).
    """
    if output is not None:
        check_output_path(output)
    model = method if isinstance(method, StyleMethod) else load(method)
    code = model.encode_style(prepare_styles(style, style_size), style_weights)
    return stylize_with(model, code, content, strength=strength, preserve_color=preserve_color, size=size,
                        mask=mask, output=output, **options)


def stylize_with(model: StyleMethod, code, content: ImageLike, *, strength: float = 1.0,
                 preserve_color: bool = False, size: int | None = None, mask: ImageLike | None = None,
                 output: str | os.PathLike | None = None, precision: str = "fp32", **options) -> torch.Tensor:
    """Stylize with an already encoded style (many contents, one style code)."""
    img = _as_loaded(content)
    _check_min_size(img)
    x, alpha = img.image, img.alpha
    if size:
        x = resize_long_side(x, size)
        alpha = None if alpha is None else resize_to(alpha, x.shape[-2:]).clamp(0, 1)
    try:
        model.check_budget(x.shape[-2:])
    except BrushstreamError as exc:
        raise BrushstreamError(f"{img.path}: {exc}") from None
    m = None
    if mask is not None:
        mask_img = _as_loaded(mask)
        m = resize_to(mask_img.image.mean(dim=1, keepdim=True), x.shape[-2:])
    y = model.stylize(x, code, strength=strength, preserve_color=preserve_color, mask=m, precision=precision,
                      **options)
    if output is not None:
        save_image(y, output, alpha=alpha, bit_depth=img.bit_depth)
    return y
