"""MSG-Net: Zhang & Dana, "Multi-style Generative Network for Real-time Transfer", ECCV Workshops 2018.
One network, many styles: a learned style by index or name, a weighted blend of them (CoMatch is linear in
its style statistic, so blending statistics blends styles), or a new style image through the siamese branch. Brush size:
the style's statistics are taken from the style image resized to 512/brush px (the paper's control); for
learned styles the statistics stored at 256..768 px are interpolated. Deviations: see core/nets/msgnet.py.

``model`` may also be the authors' released network (``21styles.model``, converted on first use by
core/foreign/msgnet_reference.py; its file says ``arch: msgnet_reference``): the paper's own architecture
(core/nets/msgnet_reference.py), one Inspiration layer fed the style image's Gram matrix. It stores no styles,
so it takes style images only (any painting; the authors trained it on 21), blended and brush-sized alike.
"""
from __future__ import annotations

import dataclasses
import json

import torch

from ..hub import weights as weight_store
from ..nets.msgnet import STRIDE
from ..nets.pretrained import trained_network
from ..ops.resize import resize_long_side
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "msgnet_styles"
REFERENCE_ARCH = "msgnet_reference"   # the authors' released network (core/nets/msgnet_reference.py)
BASE_STYLE_SIZE = 512


@register
class MSGNet(StyleMethod):
    name = "msgnet"
    summary = "MSG-Net, Zhang & Dana 2017: many trained styles in one network, brush-size control"
    capabilities = Capabilities(arbitrary_style=True, trainable=True, trained_styles=True)   # 1.4 fps at 640x360
    stride = STRIDE
    archs = ("msgnet", "msgnet_reference")
    options = (
        Option("model", "text", DEFAULT_MODEL, "trained MSG-Net: manifest name or .safetensors file "
               "(brushstream train msgnet)", weights="model"),
        Option("brush", "float", 1.0, "brush-stroke scale: the style is seen at 512/brush px (2: strokes twice as "
               "large)", source="paper", minimum=2 / 3, maximum=2.0),
    )

    def __init__(self, model: str = DEFAULT_MODEL, brush: float = 1.0):
        super().__init__()
        # The file says which network it holds: Brushstream's own, or the authors' release (converted).
        found = weight_store.read_metadata(weight_store.resolve(model)).get("arch")
        arch = REFERENCE_ARCH if found == REFERENCE_ARCH else "msgnet"
        self.net, meta, extra = trained_network(model, arch)
        self.brush = float(brush)
        self.sizes = tuple(json.loads(meta.get("brush_sizes", "[]"))) if arch == "msgnet" else ()
        # files written before the rename store "style_grams"
        prefix = "style_stats" if self.sizes and f"style_stats1.{self.sizes[0]}" in extra else "style_grams"
        for i, size in enumerate(self.sizes):   # buffers, so they follow .to(device)
            self.register_buffer(f"grams1_{i}", extra[f"{prefix}1.{size}"], persistent=False)
            self.register_buffer(f"grams2_{i}", extra[f"{prefix}2.{size}"], persistent=False)
        self.capabilities = dataclasses.replace(type(self).capabilities,
                                                fixed_styles=tuple(json.loads(meta.get("styles", "[]"))))

    @property
    def style_size(self) -> int:
        return round(BASE_STYLE_SIZE / self.brush)

    def _learned_statistics(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored statistics of learned style ``index`` at this brush size (linear between stored sizes)."""
        size = min(max(self.style_size, self.sizes[0]), self.sizes[-1])
        hi = next(i for i, s in enumerate(self.sizes) if s >= size)
        lo = max(hi - 1, 0)
        t = 0.0 if hi == lo else (size - self.sizes[lo]) / (self.sizes[hi] - self.sizes[lo])
        pick = lambda level, i: getattr(self, f"grams{level}_{i}")[index:index + 1]  # noqa: E731
        return tuple((1 - t) * pick(level, lo) + t * pick(level, hi) for level in (1, 2))

    def _encode_style(self, *, images, refs, weights):
        if images:
            grams = [self.net.style_statistics(resize_long_side(s, self.style_size)) for s in images]
        else:
            grams = [self._learned_statistics(i) for i in refs]
        return tuple(sum(w * g[level] for w, g in zip(weights, grams)) for level in range(len(grams[0])))

    def _stylize(self, *, content, code, strength, mask, state):
        return blend_strength(self.net(content, code.data), content, strength)
