"""Li et al., "Universal Style Transfer via Feature Transforms", NeurIPS 2017.
Deviation: the cascade runs relu3_1 -> relu2_1 -> relu1_1 (not from relu5_1): the bundled encoder stops at relu3_1.
"""
from __future__ import annotations

import torch

from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..nets.vgg_normalised import LEVELS
from ..ops.wct import colouring_stats, whiten_colour
from .base import Capabilities, StyleCode, StyleMethod, blend_strength
from .options import Option
from .registry import register

CASCADE = ("relu3_1", "relu2_1", "relu1_1")


@register
class WCT(StyleMethod):
    name = "wct"
    summary = "WCT, Li et al. 2017: whitening and colouring, coarse to fine"
    capabilities = Capabilities(arbitrary_style=True, texture_synthesis=True)
    stride = 4
    code_dtype = torch.float64   # covariance square roots stay in float64 (ops/wct.py)
    options = (
        Option("levels", "names", CASCADE, "encoder levels of the coarse-to-fine cascade",
               choices=LEVELS, paper="relu5_1,relu4_1,relu3_1,relu2_1,relu1_1"),
        Option("seed", "int", 0, "texture synthesis: seed of the starting noise", minimum=0, maximum=2**63 - 1,
               texture_only=True),
    )

    def __init__(self, levels: tuple[str, ...] = CASCADE, seed: int = 0, encoder: str = ENCODER_WEIGHTS,
                 decoders: dict[str, str] | None = None, eig_floor: float = 1e-5):
        super().__init__()
        # Coarse to fine, as in the paper's multi-level pipeline (deepest first); each level once.
        self.levels = tuple(sorted(set(levels), key=LEVELS.index, reverse=True))
        self.seed, self.eig_floor = seed, eig_floor
        self.encoder = normalised_vgg_encoder(encoder)
        decoders = decoders or {}
        self.decoders = torch.nn.ModuleDict({lv: vgg_decoder(lv, decoders.get(lv)) for lv in self.levels})

    def _encode_style(self, *, images, refs, weights):
        per_style = []
        for s in images:
            feats = self.encoder(s, taps=self.levels)
            per_style.append({lv: colouring_stats(feats[lv], self.eig_floor) for lv in self.levels})
        return per_style

    def _stylize(self, *, content, code, strength, mask, state):
        x = content
        for lv in self.levels:
            fc = self.encoder(x, taps=(lv,))[lv]
            # Style blending (paper section 4.2): a weighted sum of the per-style transforms.
            t = sum(w * whiten_colour(fc, stats[lv], self.eig_floor) for w, stats in zip(code.weights, code.data))
            x = self.decoders[lv](blend_strength(t, fc, strength)).clamp(0, 1)
        return x

    @torch.no_grad()
    def synthesize(self, code: StyleCode, size: tuple[int, int], iterations: int = 3,
                   seed: int | None = None) -> torch.Tensor:
        """Texture synthesis from noise (paper section 4.3): run the cascade on uniform noise, a few times."""
        h, w = size
        self.check_budget(size)
        gen = torch.Generator().manual_seed(self.seed if seed is None else seed)
        x = torch.rand(1, 3, h, w, generator=gen).to(self.device, self.dtype)
        for _ in range(iterations):
            x = self.stylize(x, code)
        return x
