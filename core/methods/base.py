"""The one interface every style method implements.

A method turns a style (:class:`StyleSpec`: images with blend weights, or indices/names of its fixed
styles) into a reusable :class:`StyleCode` once (``encode_style``), then stylizes any number of content
images or stream frames with it (``stylize``). Images are float (B, 3, H, W) in [0, 1]. The base class
owns what is common: style checks, padding to the network stride and cropping back, the memory budget,
the batching policy, the stream state, strength checks and colour preservation, so each method file
holds only its paper's maths. Options are declared as data (options.py) and checked once, in build().
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import BrushstreamError
from ..io.image import as_unit_range, pixel_count
from ..ops.colour import match_palette, palette_stats, preserve_colour
from ..ops.resize import crop_box, pad_with_context, resize_long_side, resize_to
from ..ops.wct import ColouringStats
from ..temporal import DEFAULT_CUT_THRESHOLD, DEFAULT_TEMPORAL_STRENGTH, StreamState
from .options import Option
from .style_spec import StyleSpec, resolve_refs

MAX_PIXELS_ENV = "BRUSHSTREAM_MAX_PIXELS"
# Pixels one stylize call may process per image on the feed-forward networks; beyond it we refuse
# clearly instead of exhausting memory. $BRUSHSTREAM_MAX_PIXELS overrides it for every method.
DEFAULT_MAX_PIXELS = 2048 * 2048

# Options every method's stylize() takes; hosts build their common controls from these.
STRENGTH = Option("strength", "float", 1.0, "0 keeps the content, 1 is full style", source="paper",
                  minimum=0.0, maximum=1.0)
PRESERVE_COLOR = Option("preserve_color", "bool", False, "keep the content's colours, take luminance from the style",
                        source="paper")
PRECISION = Option("precision", "choice", "fp32", "bf16: bfloat16 autocast; faster on GPUs and CPUs with bfloat16 instructions, "
                   "much slower on AVX2-only CPUs",
                   choices=("fp32", "bf16"))
STYLIZE_OPTIONS = (STRENGTH, PRESERVE_COLOR, PRECISION)
# Construction options of the arbitrary-style methods. WORK_SIZE is the peer's trick: it always works at 384 px.
WORK_SIZE = Option("work_size", "int", 0, "run the networks with the longer side at this many px and resize the "
                   "result to the input's size; 0: work at the input's size", minimum=0, maximum=16384)
PALETTE = Option("palette", "float", 0.0, "move the result's colours this far toward the style images' palette (their "
                 "chrominance mean and covariance; the result's luminance stays); 0: the method's own colours",
                 minimum=0.0, maximum=1.0)


def max_pixels_override() -> int | None:
    """$BRUSHSTREAM_MAX_PIXELS, read at call time so hosts can change it; a bad value is a clear error."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 1 or not value.is_integer():
        raise BrushstreamError(f"{MAX_PIXELS_ENV} must be a whole number of pixels, e.g. 4194304, got {text!r}")
    return int(value)


def check_pixels(size: tuple[int, int], budget: int, method: str) -> None:
    """Refuse an (H, W) over ``budget`` pixels, in one line naming ``method`` and how to get under it."""
    h, w = int(size[0]), int(size[1])
    if h * w > budget:
        raise BrushstreamError(f"{w}x{h} px is over the memory budget of {pixel_count(budget)} for {method}; "
                               f"make it smaller (--size) or raise {MAX_PIXELS_ENV}")


@dataclass(frozen=True)
class Capabilities:
    """What a method can do, so hosts can build the right UI without special cases."""
    arbitrary_style: bool                 # any style image, no training
    fixed_styles: tuple[str, ...] = ()    # names of built-in styles for fixed-set methods (index = position)
    trained_styles: bool = False          # styles learned in a model file: fixed_styles is filled per instance
    style_blend: bool = True              # several styles blended with weights
    video_native: bool = False            # carries its own temporal mechanism through the stream state
    realtime: bool = False                # streams live on a 2-core CPU (figure in docs/benchmarks); OBS offers it
    trainable: bool = False
    spatial_mask: bool = False            # two styles composited by a mask
    texture_synthesis: bool = False       # can run without a content image
    optimisation: bool = False            # iterative per image (steps matter)


def _tree_to(obj: Any, device, dtype) -> Any:
    """``obj`` with its tensors moved; containers are rebuilt only where something moved, so the per-frame
    call in ``stylize`` costs nothing once a code already lives where its method does."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device=device, dtype=dtype if dtype is not None and obj.is_floating_point() else None)
    if isinstance(obj, dict):
        items = {k: _tree_to(v, device, dtype) for k, v in obj.items()}
        return obj if all(items[k] is obj[k] for k in obj) else items
    if isinstance(obj, (list, tuple)):
        items = [_tree_to(v, device, dtype) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj)) else type(obj)(items)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        moved = {f.name: _tree_to(getattr(obj, f.name), device, dtype) for f in dataclasses.fields(obj) if f.init}
        return obj if all(v is getattr(obj, k) for k, v in moved.items()) else dataclasses.replace(obj, **moved)
    return obj


@dataclass
class StyleCode:
    """A style turned into what the method needs, computed once and reused for every frame."""
    method: str
    weights: tuple[float, ...]
    data: Any = field(repr=False)
    refs: tuple[int, ...] = ()            # fixed-style indices (empty for style images)
    palette: ColouringStats | None = field(default=None, repr=False)   # the style images' colours (PALETTE)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "StyleCode":
        """This code with its tensors on ``device`` (floating ones in ``dtype``): ``self`` when nothing moves,
        else a copy (the original is untouched)."""
        data = _tree_to(self.data, device, dtype)
        # The palette stays float64 (it feeds a small eigendecomposition); only its device follows.
        palette = _tree_to(self.palette, device, None)
        if data is self.data and palette is self.palette:
            return self
        return dataclasses.replace(self, data=data, palette=palette)


# Context around a picture, in cells of the deepest feature level a decoder reads: measured on content_eval, 4
# cells take the border's departure from the in-context result from 0.14 to 0.024 at relu4_1 (bench/edge_bands.py).
CONTEXT_CELLS = 4


def blend_strength(stylized: torch.Tensor, content: torch.Tensor, strength: float) -> torch.Tensor:
    """The content/style trade-off of the feature-space methods (AdaIN eq. 14, WCT eq. 5): one place."""
    return stylized if strength == 1.0 else strength * stylized + (1.0 - strength) * content


class StyleMethod(nn.Module):
    name: ClassVar[str]
    summary: ClassVar[str] = ""          # one line for menus and --help: paper and what it is good for
    capabilities: ClassVar[Capabilities]
    options: ClassVar[tuple[Option, ...]] = ()   # construction options, checked by registry.build
    # Weights that are not bundled and when the method needs them (shown by `brushstream methods`): a fresh
    # install runs every method offline except these.
    needs_download: ClassVar[str] = ""
    # The network architectures (a weights file's ``arch`` metadata) the method's ``model`` option loads: a host given
    # only a file picks the method that reads it (registry.method_for_weights).
    archs: ClassVar[tuple[str, ...]] = ()
    # What the live filter (obs_filter/) sets unless the user does, for methods that can stream (realtime).
    live_options: ClassVar[dict[str, Any]] = {}
    stride: ClassVar[int] = 4            # content is padded to a multiple of this and cropped back
    # Px of reflected surroundings added on every side (at the working size) and cropped off again: encoders with
    # zero padding put light bands along the borders of a decoder's output otherwise (bench/edge_bands.py).
    context: int = 0
    default_max_pixels: ClassVar[int] = DEFAULT_MAX_PIXELS
    # Feed-forward networks whose statistics are computed per image inside the batch run a whole batch at
    # once; methods with per-image matrices or optimisation loop over the images.
    batches: ClassVar[bool] = False
    # The dtype style codes are kept in: None follows the method's dtype; WCT keeps float64 statistics.
    code_dtype: ClassVar[torch.dtype | None] = None
    # The flow-guided blend's strength on video (core/temporal.py), set per method by bench/video_temporal.py.
    temporal_strength: ClassVar[float] = DEFAULT_TEMPORAL_STRENGTH
    max_pixels: int | None = None        # per-instance override of the budget (hosts, tests)
    work_size: int = 0                   # WORK_SIZE: longer side the networks see (0: the input's own)
    palette: float = 0.0                 # PALETTE: how far results move to the style images' colour statistics

    # -- to implement -------------------------------------------------------------------
    def _encode_style(self, *, images: list[torch.Tensor], refs: tuple[int, ...],
                      weights: tuple[float, ...]) -> Any:
        raise NotImplementedError

    def _stylize(self, *, content: torch.Tensor, code: StyleCode, strength: float,
                 mask: torch.Tensor | None, state: StreamState | None) -> torch.Tensor:
        raise NotImplementedError

    # -- shared behaviour ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        p = next((p for p in self.parameters() if p.is_floating_point()), None)
        return p.dtype if p is not None else torch.float32

    @property
    def budget(self) -> int:
        """Pixels per image this method may process: instance override, then the env variable, then the default."""
        if self.max_pixels is not None:
            return int(self.max_pixels)
        override = max_pixels_override()
        return override if override is not None else self.default_max_pixels

    def new_state(self, *, temporal_strength: float | None = None, flow: Any = None,
                  cut_threshold: float = DEFAULT_CUT_THRESHOLD) -> StreamState:
        """A fresh per-stream state; pass it to every ``stylize`` call of one stream, frames in order.

        Image methods blend in their previous output, warped by the input frames' ``flow`` (a core.flow
        backend, DIS by default), with ``temporal_strength`` (default: the method's ``temporal_strength``;
        0 keeps per-frame output but still tracks scene cuts). Video-native methods carry their own
        mechanism and default to 0.
        """
        if temporal_strength is None:
            temporal_strength = 0.0 if self.capabilities.video_native else self.temporal_strength
        return StreamState(self.name, strength=temporal_strength, flow=flow, cut_threshold=cut_threshold)

    @torch.no_grad()
    def encode_style(self, style: Any, weights: list[float] | tuple[float, ...] | None = None) -> StyleCode:
        """``style``: a :class:`StyleSpec`, style image tensor(s), or a fixed style's index/name (or a
        ``{style: weight}`` blend). ``weights`` blend several styles (normalised to sum to 1)."""
        spec = StyleSpec.coerce(style, weights)
        w = spec.normalised_weights()
        caps = self.capabilities
        if len(w) > 1 and not caps.style_blend:
            raise BrushstreamError(f"{self.name} takes one style at a time, got {len(w)}")
        if spec.images:
            if not caps.arbitrary_style:
                raise BrushstreamError(f"{self.name} has fixed styles ({', '.join(caps.fixed_styles)}); "
                                       f"give a style index or name, not an image")
            images = [self._check_image(s, "style") for s in spec.images]
            # The palette is measured only where --palette will use it (a code serves the method that made it).
            return StyleCode(self.name, w, self._encode_style(images=images, refs=(), weights=w),
                             palette=palette_stats(images, w) if self.palette else None)
        if not caps.fixed_styles:
            raise BrushstreamError(f"{self.name} takes style images, not style indices or names")
        refs = resolve_refs(spec.refs, caps.fixed_styles, self.name)
        return StyleCode(self.name, w, self._encode_style(images=[], refs=refs, weights=w), refs)

    def stylize(self, content: torch.Tensor, code: StyleCode, *, strength: float = 1.0,
                preserve_color: bool = False, mask: torch.Tensor | None = None, precision: str = "fp32",
                state: StreamState | None = None) -> torch.Tensor:
        """Stylize (B, 3, H, W) content; returns the same size, in [0, 1], in the method's dtype.

        With ``state`` the B images are consecutive frames of one stream and go through one at a time.
        ``precision="bf16"`` runs the networks under bfloat16 autocast (see bench/speed_stills.py).
        """
        strength = STRENGTH.parse(strength)
        preserve_color = PRESERVE_COLOR.parse(preserve_color)
        precision = PRECISION.parse(precision)
        if precision == "bf16" and self.capabilities.optimisation:
            raise BrushstreamError(f"{self.name} optimises pixels and runs in fp32 only")
        if not isinstance(code, StyleCode):
            raise BrushstreamError(f"{self.name}.stylize needs the style code that encode_style() returns, "
                                   f"got {type(code).__name__}")
        if code.method != self.name:
            raise BrushstreamError(f"style code was made by {code.method!r}, not {self.name!r}")
        if state is not None and state.method != self.name:
            raise BrushstreamError(f"stream state was made by {state.method!r}, not {self.name!r}")
        content = self._check_image(content, "content")
        self.check_budget(content.shape[-2:])
        code = code.to(self.device, self.code_dtype or self.dtype)  # a method moved after encoding keeps working
        if mask is not None:
            mask = self._check_mask(mask.to(self.device, self.dtype), content, code)
        step = content.shape[0] if self.batches and state is None else 1
        outs = []
        for i in range(0, content.shape[0], step):
            frame = content[i:i + step]
            # A working size shrinks what the networks see (never enlarges); the result is resized back.
            small = resize_long_side(frame, self.work_size) if 0 < self.work_size < max(frame.shape[-2:]) else frame
            x, box = pad_with_context(small, self.stride, self.context)
            m = None if mask is None else \
                pad_with_context(resize_to(mask[i:i + step], small.shape[-2:]), self.stride, self.context)[0]
            if state is not None:
                state.begin_frame(frame)
            # Feed-forward methods need no autograd graph; optimisation methods manage their own.
            with torch.set_grad_enabled(self.capabilities.optimisation), \
                    torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                y = self._stylize(content=x, code=code, strength=strength, mask=m, state=state)
            y = crop_box(y.to(content.dtype), box).clamp(0, 1)
            if self.palette and code.palette is not None:   # at the working size: same statistics, fewer pixels
                y = match_palette(y, code.palette, self.palette)
            y = resize_to(y, frame.shape[-2:])
            if preserve_color:
                y = preserve_colour(y, frame)
            if state is not None:
                # The blend works on what the viewer sees, so the colour-preserved frame is what is carried on.
                y = state.stabilise(y)
                state.end_frame(y)
            outs.append(y)
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def check_budget(self, size: tuple[int, int]) -> None:
        check_pixels(size, self.budget, self.name)

    def _check_image(self, x: torch.Tensor, role: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise BrushstreamError(f"{role} must be an image tensor, got {type(x).__name__}")
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise BrushstreamError(f"{role} must be an RGB tensor (B, 3, H, W), got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < 2 * self.stride:
            raise BrushstreamError(
                f"{role} image is {x.shape[-1]}x{x.shape[-2]} px; at least {2 * self.stride} px per side is needed")
        if not torch.isfinite(x).all():
            raise BrushstreamError(f"{role} image contains NaN or infinite values")
        return as_unit_range(x, f"{role} image").to(self.device, self.dtype).clamp(0, 1)

    def _check_mask(self, mask: torch.Tensor, content: torch.Tensor, code: StyleCode) -> torch.Tensor:
        if not self.capabilities.spatial_mask:
            raise BrushstreamError(f"{self.name} does not support a spatial mask")
        if len(code.weights) != 2:
            raise BrushstreamError("a spatial mask needs exactly two styles (foreground, background)")
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        if mask.shape[0] not in (1, content.shape[0]) or mask.shape[-2:] != content.shape[-2:]:
            raise BrushstreamError(
                f"mask is {tuple(mask.shape[-2:])} but content is {tuple(content.shape[-2:])}; they must match")
        if not torch.isfinite(mask).all():
            raise BrushstreamError("mask contains NaN or infinite values")
        return mask[:, :1].clamp(0, 1).expand(content.shape[0], 1, *content.shape[-2:])
