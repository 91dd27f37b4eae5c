"""Li et al., "Universal Style Transfer via Feature Transforms", NeurIPS 2017: whitening and colouring at each level of
a coarse-to-fine cascade, each level its own encoder/decoder pair, each decoding to an image the next level encodes.
Deviation: relu5_1 and relu4_1 use the VGG16 ImageNet encoder with reconstruction decoders trained here, relu3_1..relu1_1
the bundled normalised VGG19 pair (the paper: VGG19 throughout); images pass between levels, so the pairs mix freely.
The default cascade is the bundled light one (relu3_1 -> relu1_1); levels=relu5_1,...,relu1_1 is the paper's five.
alphas: the paper's content/style blend (eq. 5), one per level (the paper sets one alpha for all; its figure 6 varies
it). Whitening drops near-silent directions and may be damped (ops/wct.py), as the authors' code does.
"""
from __future__ import annotations

import torch

from ..errors import BrushstreamError
from ..nets.pretrained import ENCODER_WEIGHTS, VGG16_DOWNLOAD, VGG16_WEIGHTS, encoder_family, level_encoders, vgg_decoder
from ..nets.vgg16_encoder import STRIDE
from ..nets.vgg_decoder import LEVELS
from ..ops.wct import colouring_stats, whiten_colour
from .base import PALETTE, WORK_SIZE, Capabilities, StyleCode, StyleMethod, blend_strength
from .options import Option
from .registry import register

CASCADE = ("relu3_1", "relu2_1", "relu1_1")
FIVE_LEVELS = ("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1")


@register
class WCT(StyleMethod):
    name = "wct"
    summary = "WCT, Li et al. 2017: whitening and colouring, coarse to fine"
    needs_download = (f"{VGG16_DOWNLOAD}: when --levels includes relu4_1 or relu5_1; relu5_1 also needs "
                      f"vgg16_r51_decoder (20 MB)")
    capabilities = Capabilities(arbitrary_style=True, texture_synthesis=True, spatial_mask=True)
    stride = 4            # per instance: the deepest level's
    code_dtype = torch.float64   # covariance square roots stay in float64 (ops/wct.py)
    options = (
        Option("levels", "names", CASCADE, "encoder levels of the coarse-to-fine cascade",
               choices=LEVELS, paper="relu5_1,relu4_1,relu3_1,relu2_1,relu1_1"),
        Option("alphas", "floats", (1.0,), "style strength per level, deepest first (one value: every level); "
               "multiplies --strength", minimum=0.0, maximum=1.0, source="paper"),
        Option("damping", "float", 1.0, "whitening damping: this share of the mean eigenvalue is added to the photo's "
               "covariance (the authors' code adds the identity), so its weak directions are whitened less",
               minimum=0.0, maximum=10.0, paper="the identity added (0 in the paper's equations)"),
        Option("seed", "int", 0, "texture synthesis: seed of the starting noise", minimum=0, maximum=2**63 - 1,
               texture_only=True),
        WORK_SIZE, PALETTE,
    )

    def __init__(self, levels: tuple[str, ...] = CASCADE, alphas: tuple[float, ...] = (1.0,), damping: float = 1.0,
                 seed: int = 0, work_size: int = 0, palette: float = 0.0,
                 encoder: str = ENCODER_WEIGHTS, decoders: dict[str, str] | None = None, eig_floor: float = 1e-5,
                 vgg16: str = VGG16_WEIGHTS):
        super().__init__()
        self.work_size, self.palette = work_size, palette
        # Coarse to fine, as in the paper's multi-level pipeline (deepest first); each level once.
        self.levels = tuple(sorted(set(levels), key=LEVELS.index, reverse=True))
        self.stride = max(STRIDE[lv] for lv in self.levels)
        alphas = tuple(alphas)
        if len(alphas) not in (1, len(self.levels)):
            raise BrushstreamError(f"alphas (--alphas) needs one value or one per level ({len(self.levels)}: "
                                   f"{','.join(self.levels)}), got {len(alphas)}")
        self.alphas = dict(zip(self.levels, alphas * len(self.levels) if len(alphas) == 1 else alphas))
        self.damping = damping
        self.seed, self.eig_floor = seed, eig_floor
        self.encoders = torch.nn.ModuleDict(level_encoders(self.levels, encoder, vgg16))
        decoders = decoders or {}
        self.decoders = torch.nn.ModuleDict({lv: vgg_decoder(lv, decoders.get(lv)) for lv in self.levels})

    def _encode_style(self, *, images, refs, weights):
        per_style = []
        for s in images:
            per_style.append({lv: colouring_stats(self._encode(s, lv), self.eig_floor) for lv in self.levels})
        return per_style

    def _encode(self, x: torch.Tensor, level: str) -> torch.Tensor:
        return self.encoders[encoder_family(level)](x, (level,))[level]

    def _stylize(self, *, content, code, strength, mask, state):
        x = content
        for lv in self.levels:
            fc = self._encode(x, lv)
            # Style blending (paper section 4.2): a weighted sum of the per-style transforms.
            if mask is None:
                t = sum(w * whiten_colour(fc, stats[lv], self.eig_floor, self.damping)
                        for w, stats in zip(code.weights, code.data))
            else:
                t = self._regions(fc, code, lv, mask)
            x = self.decoders[lv](blend_strength(t, fc, strength * self.alphas[lv])).clamp(0, 1)
        return x

    def _regions(self, fc: torch.Tensor, code: StyleCode, level: str, mask: torch.Tensor) -> torch.Tensor:
        """Spatial control (paper section 4.2, as the authors' code does it): the positions under the mask are whitened
        among themselves and coloured by the first style, the rest by the second."""
        inside = torch.nn.functional.interpolate(mask[:1], size=fc.shape[-2:], mode="nearest")[0, 0] > 0.5
        out = fc.clone()
        for region, stats in ((inside, code.data[0]), (~inside, code.data[1])):
            if int(region.sum()) < 2:   # no covariance from under two positions: the region keeps the photo
                continue
            columns = fc[0][:, region].unsqueeze(0).unsqueeze(-1)   # (1, C, N, 1)
            out[0][:, region] = whiten_colour(columns, stats[level], self.eig_floor, self.damping)[0, :, :, 0]
        return out

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
