"""WCT: Li et al., "Universal Style Transfer via Feature Transforms", NeurIPS 2017.
Deviation: the cascade runs relu3_1 -> relu2_1 -> relu1_1 (not from relu5_1): the bundled encoder stops at relu3_1.
"""
from __future__ import annotations

import torch

from ..errors import BrushstreamError
from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..nets.vgg_normalised import LEVELS
from ..ops.wct import colouring_stats, whiten_colour
from .base import Capabilities, StyleCode, StyleMethod
from .registry import register

CASCADE = ("relu3_1", "relu2_1", "relu1_1")


@register
class WCT(StyleMethod):
    name = "wct"
    capabilities = Capabilities(arbitrary_style=True, texture_synthesis=True)
    stride = 4

    def __init__(self, levels: tuple[str, ...] = CASCADE, encoder: str = ENCODER_WEIGHTS,
                 decoders: dict[str, str] | None = None, eig_floor: float = 1e-5):
        super().__init__()
        bad = [lv for lv in levels if lv not in LEVELS]
        if bad or not levels:
            raise BrushstreamError(f"WCT levels must be a non-empty subset of {LEVELS}, got {levels}")
        # Coarse to fine, as in the paper's multi-level pipeline (deepest first).
        self.levels = tuple(sorted(levels, key=LEVELS.index, reverse=True))
        self.eig_floor = eig_floor
        self.encoder = normalised_vgg_encoder(encoder)
        decoders = decoders or {}
        self.decoders = torch.nn.ModuleDict({lv: vgg_decoder(lv, decoders.get(lv)) for lv in self.levels})

    def _encode_style(self, styles, weights):
        per_style = []
        for s in styles:
            feats = self.encoder(s, taps=self.levels)
            per_style.append({lv: colouring_stats(feats[lv], self.eig_floor) for lv in self.levels})
        return per_style

    def _stylize(self, content, code: StyleCode, strength, mask, **_):
        x = content
        for lv in self.levels:
            fc = self.encoder(x, taps=(lv,))[lv]
            if fc.shape[0] != 1:
                raise BrushstreamError("WCT stylizes one image at a time")
            # Style blending (paper section 4.2): a weighted sum of the per-style transforms.
            t = sum(w * whiten_colour(fc, stats[lv], self.eig_floor) for w, stats in zip(code.weights, code.data))
            t = strength * t + (1 - strength) * fc   # eq. 5
            x = self.decoders[lv](t).clamp(0, 1)
        return x

    @torch.no_grad()
    def synthesize(self, code: StyleCode, size: tuple[int, int], iterations: int = 3,
                   seed: int | None = 0) -> torch.Tensor:
        """Texture synthesis from noise (paper section 4.3): run the cascade on uniform noise, a few times."""
        h, w = size
        self.check_budget(size)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        x = torch.rand(1, 3, h, w, generator=gen).to(self.device)
        for _ in range(iterations):
            x = self.stylize(x, code)
        return x
