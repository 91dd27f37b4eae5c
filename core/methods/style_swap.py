"""Style-Swap: Chen & Schmidt, "Fast Patch-based Style Transfer of Arbitrary Style", 2016.
Deviation: the inverse network is the pretrained relu3_1 decoder (trained on reconstruction, not on
swapped features as in section 4), and matching is chunked over style patches to bound memory.
"""
from __future__ import annotations

from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..ops.patch_swap import style_swap
from .base import Capabilities, StyleCode, StyleMethod
from .registry import register


@register
class StyleSwap(StyleMethod):
    name = "swap"
    capabilities = Capabilities(arbitrary_style=True)
    stride = 4

    def __init__(self, patch_size: int = 3, chunk: int = 1024,
                 encoder: str = ENCODER_WEIGHTS, decoder: str | None = None):
        super().__init__()
        if patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be a positive odd number, got {patch_size}")
        self.patch_size, self.chunk = patch_size, chunk
        self.encoder = normalised_vgg_encoder(encoder)
        self.decoder = vgg_decoder("relu3_1", decoder)

    def _encode_style(self, styles, weights):
        # The code is the style feature map; patches are cut band by band while matching (bounded memory).
        return [self.encoder(s)["relu3_1"] for s in styles]

    def _stylize(self, content, code: StyleCode, strength, mask, **_):
        fc = self.encoder(content)["relu3_1"]
        # Several styles: a weighted sum of the swapped feature maps (the paper swaps with one style).
        t = sum(w * style_swap(fc, fs, self.patch_size, self.chunk) for w, fs in zip(code.weights, code.data))
        t = strength * t + (1 - strength) * fc
        return self.decoder(t)
