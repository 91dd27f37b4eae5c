"""Chen & Schmidt, "Fast Patch-based Style Transfer of Arbitrary Style", 2016.
The inverse network (section 4) is a relu3_1 decoder trained here on style-swapped features as well as the photos'
own (core/train/swap_inverse_recipe.py, whose header lists its deviations); --decoder takes any relu3_1 decoder,
the plain reconstruction one included. Matching is chunked over style patches to bound memory.
"""
from __future__ import annotations

from ..errors import BrushstreamError
from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..ops.patch_swap import style_swap
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

# Trained on swapped features (brushstream train swap_inverse); --decoder vgg19_normalised_r31_decoder: the plain one.
INVERSE_NETWORK = "swap_inverse_r31"


@register
class StyleSwap(StyleMethod):
    name = "swap"
    summary = "Style-Swap, Chen & Schmidt 2016: swaps feature patches"
    capabilities = Capabilities(arbitrary_style=True)
    stride = 4
    options = (
        Option("patch_size", "int", 3, "patch size in relu3_1 feature pixels (odd)", source="paper",
               minimum=1, maximum=9, odd=True),
        Option("decoder", "text", INVERSE_NETWORK, "the inverse network: a relu3_1 decoder (manifest name or "
               ".safetensors file; brushstream train swap_inverse)", weights="decoder"),
    )

    def __init__(self, patch_size: int = 3, decoder: str = INVERSE_NETWORK, chunk: int = 1024,
                 encoder: str = ENCODER_WEIGHTS):
        super().__init__()
        self.patch_size, self.chunk = patch_size, chunk
        self.encoder = normalised_vgg_encoder(encoder)
        self.decoder = vgg_decoder("relu3_1", decoder)

    def _encode_style(self, *, images, refs, weights):
        # The code is the style feature map; patches are cut band by band while matching (bounded memory).
        feats = [self.encoder(s)["relu3_1"] for s in images]
        self._check_fits(feats, "style")
        return feats

    def _check_fits(self, feats, role: str) -> None:
        side = min(min(f.shape[-2:]) for f in feats)
        if side < self.patch_size:
            px = self.patch_size * self.stride
            raise BrushstreamError(f"the {role} image is too small for {self.patch_size}x{self.patch_size} patches: "
                                   f"at least {px} px per side is needed")

    def _stylize(self, *, content, code, strength, mask, state):
        fc = self.encoder(content)["relu3_1"]
        self._check_fits([fc], "content")
        # Several styles: a weighted sum of the swapped feature maps (the paper swaps with one style).
        t = sum(w * style_swap(fc, fs, self.patch_size, self.chunk) for w, fs in zip(code.weights, code.data))
        return self.decoder(blend_strength(t, fc, strength))
