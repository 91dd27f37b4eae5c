"""AdaIN: Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization", ICCV 2017.
Deviation: encoder/decoder at relu3_1 (the bundled LST pair) rather than relu4_1, so no download is needed.
"""
from __future__ import annotations

import torch

from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..ops.adain import adain
from ..ops.stats import mean_std
from .base import Capabilities, StyleCode, StyleMethod, blend_strength
from .registry import register


@register
class AdaIN(StyleMethod):
    name = "adain"
    summary = "AdaIN, Huang & Belongie 2017: fast arbitrary style"
    capabilities = Capabilities(arbitrary_style=True, realtime=True, spatial_mask=True)
    stride = 4
    batches = True   # instance statistics are per image inside the batch

    def __init__(self, encoder: str = ENCODER_WEIGHTS, decoder: str | None = None):
        super().__init__()
        self.encoder = normalised_vgg_encoder(encoder)
        self.decoder = vgg_decoder("relu3_1", decoder)

    def _encode_style(self, *, images, refs, weights):
        # AdaIN is affine in the style statistics, so the paper's weighted sum of AdaIN outputs
        # (section 7.3, style interpolation) equals AdaIN with the weighted statistics. Keep the
        # per-style statistics too: a spatial mask composites two styles instead of blending them.
        return [mean_std(self.encoder(s)["relu3_1"]) for s in images]

    def _stylize(self, *, content, code, strength, mask, state):
        return self.decoder(self.transfer(self.encoder(content)["relu3_1"], code, strength, mask))

    def transfer(self, fc: torch.Tensor, code: StyleCode, strength: float = 1.0,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """relu3_1 content features -> target features t (eq. 8, then eq. 14 for strength)."""
        if mask is None:
            mean = sum(w * m for w, (m, _) in zip(code.weights, code.data))
            std = sum(w * s for w, (_, s) in zip(code.weights, code.data))
            t = adain(fc, mean, std)
        else:
            # Spatial control: each region takes its own style, with content statistics of that region.
            m = torch.nn.functional.interpolate(mask, size=fc.shape[-2:], mode="bilinear", align_corners=False)
            (fg_mean, fg_std), (bg_mean, bg_std) = code.data
            t = m * adain(fc, fg_mean, fg_std, m) + (1 - m) * adain(fc, bg_mean, bg_std, 1 - m)
        return blend_strength(t, fc, strength)
