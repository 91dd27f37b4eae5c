"""The one interface every style method implements.

A method turns one or more styles into a reusable :class:`StyleCode` once (``encode_style``), then
stylizes any number of content images with it (``stylize``). Images are float (B, 3, H, W) in [0, 1].
The base class owns what is common: weight normalisation, padding to the network stride and cropping
back, the memory budget, strength clamping and colour preservation, so each method file holds only
its paper's maths.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from ..errors import BrushstreamError
from ..ops.colour import preserve_colour
from ..ops.resize import crop_to, pad_to_multiple

# Pixels one stylize call may process at once on this method's networks; beyond it we refuse
# clearly instead of exhausting memory. Overridable per process for bigger machines.
DEFAULT_MAX_PIXELS = int(os.environ.get("BRUSHSTREAM_MAX_PIXELS", 2048 * 2048))


@dataclass(frozen=True)
class Capabilities:
    """What a method can do, so hosts can build the right UI without special cases."""
    arbitrary_style: bool                 # any style image, no training
    fixed_styles: tuple[str, ...] = ()    # names of built-in styles for fixed-set methods
    video_native: bool = False
    realtime: bool = False                # interactive frame rates on a GPU
    trainable: bool = False
    strength: bool = True                 # honours strength/alpha
    spatial_mask: bool = False            # two styles composited by a mask
    texture_synthesis: bool = False       # can run without a content image
    optimisation: bool = False            # iterative per image (steps matter)


@dataclass
class StyleCode:
    """A style turned into what the method needs, computed once and reused for every frame."""
    method: str
    weights: tuple[float, ...]
    data: Any = field(repr=False)


def normalise_weights(weights: Sequence[float] | None, count: int) -> tuple[float, ...]:
    if count < 1:
        raise BrushstreamError("at least one style image is needed")
    if weights is None:
        return tuple([1.0 / count] * count)
    if len(weights) != count:
        raise BrushstreamError(f"{len(weights)} style weights given for {count} styles")
    w = [float(x) for x in weights]
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise BrushstreamError(f"style weights must be non-negative and not all zero, got {w}")
    total = sum(w)
    return tuple(x / total for x in w)


class StyleMethod(nn.Module):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    stride: ClassVar[int] = 4            # content is padded to a multiple of this and cropped back
    max_pixels: int = DEFAULT_MAX_PIXELS

    # -- to implement -------------------------------------------------------------------
    def _encode_style(self, styles: list[torch.Tensor], weights: tuple[float, ...]) -> Any:
        raise NotImplementedError

    def _stylize(self, content: torch.Tensor, code: StyleCode, strength: float,
                 mask: torch.Tensor | None, **options) -> torch.Tensor:
        raise NotImplementedError

    # -- shared behaviour ---------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @torch.no_grad()
    def encode_style(self, styles: Sequence[torch.Tensor] | torch.Tensor,
                     weights: Sequence[float] | None = None) -> StyleCode:
        if isinstance(styles, torch.Tensor):
            styles = [styles[i:i + 1] for i in range(styles.shape[0])] if styles.dim() == 4 else [styles]
        styles = [self._check_image(s.to(self.device), "style") for s in styles]
        w = normalise_weights(weights, len(styles))
        return StyleCode(self.name, w, self._encode_style(styles, w))

    def stylize(self, content: torch.Tensor, code: StyleCode, *, strength: float = 1.0,
                preserve_color: bool = False, mask: torch.Tensor | None = None, precision: str = "fp32",
                **options) -> torch.Tensor:
        """Stylize (B, 3, H, W) content; returns the same size, in [0, 1].

        ``precision="bf16"`` runs the networks under bfloat16 autocast (1.2-1.7x faster for AdaIN on this
        CPU with the same style distance, see bench/speed_stills.py); WCT's statistics stay in float64.
        """
        if precision not in ("fp32", "bf16"):
            raise BrushstreamError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if precision == "bf16" and self.capabilities.optimisation:
            raise BrushstreamError(f"{self.name} optimises pixels and runs in fp32 only")
        if code.method != self.name:
            raise BrushstreamError(f"style code was made by {code.method!r}, not {self.name!r}")
        if not 0.0 <= strength <= 1.0:
            raise BrushstreamError(f"strength must be between 0 and 1, got {strength}")
        content = self._check_image(content.to(self.device), "content")
        self.check_budget(content.shape[-2:])
        if mask is not None:
            mask = self._check_mask(mask.to(self.device), content, code)
        outs = []
        for i in range(content.shape[0]):  # per image: statistics are per image by definition
            x, size = pad_to_multiple(content[i:i + 1], self.stride)
            m = None if mask is None else pad_to_multiple(mask[i:i + 1], self.stride)[0]
            # Feed-forward methods need no autograd graph; optimisation methods manage their own.
            with torch.set_grad_enabled(self.capabilities.optimisation), \
                    torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                y = self._stylize(x, code, strength, m, **options).float()
            outs.append(crop_to(y, size).clamp(0, 1))
        out = torch.cat(outs)
        if preserve_color:
            out = preserve_colour(out, content)
        return out

    def check_budget(self, size: tuple[int, int]) -> None:
        h, w = int(size[0]), int(size[1])
        if h * w > self.max_pixels:
            raise BrushstreamError(
                f"{w}x{h} px is over the memory budget of {self.max_pixels / 1e6:.1f} MP for {self.name}; "
                f"downscale it (--size) or raise BRUSHSTREAM_MAX_PIXELS")

    def _check_image(self, x: torch.Tensor, role: str) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise BrushstreamError(f"{role} must be an RGB tensor (B, 3, H, W), got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < 2 * self.stride:
            raise BrushstreamError(
                f"{role} image is {x.shape[-1]}x{x.shape[-2]} px; at least {2 * self.stride} px per side is needed")
        if not torch.isfinite(x).all():
            raise BrushstreamError(f"{role} image contains NaN or infinite values")
        return x.float().clamp(0, 1)

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
        return mask[:, :1].float().clamp(0, 1).expand(content.shape[0], 1, *content.shape[-2:])
