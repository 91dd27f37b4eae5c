"""Linear Style Transfer: Li, Liu, Kautz & Yang, "Learning Linear Transformations for Fast Image and Video Style
Transfer", CVPR 2019, at relu3_1: the bundled normalised VGG19 encoder and decoder (as AdaIN here) around a trained
transformation module (core/nets/lst.py, recipe core/train/lst_recipe.py).
The style code is the style branch's matrix S and the style's feature mean, made once and reused for every frame (the
paper's video mode: per frame only the content matrix is computed; a new style image is a new code between two frames,
nothing is reloaded). Blending several styles takes the weighted sum of their S and means: T = S C is linear in S, so
this is the linear interpolation of T, and of the target features. Strength blends features (AdaIN's alpha).
Deviations: see core/nets/lst.py (the module) and core/train/lst_recipe.py (its training).
"""
from __future__ import annotations

from ..errors import BrushstreamError
from ..nets.lst import LinearTransform
from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, trained_network, vgg_decoder
from ..nets.vgg_normalised import CHANNELS, STRIDE
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "lst_r31"
LEVEL = "relu3_1"


@register
class LinearStyleTransfer(StyleMethod):
    name = "lst"
    summary = "Linear Style Transfer, Li et al. 2019: a learned linear feature transform, fast and steady on video"
    # An image method: its stability comes from the linear transform; the base class's flow-guided state still applies.
    capabilities = Capabilities(arbitrary_style=True, realtime=True, trainable=True)
    stride = STRIDE[LEVEL]
    batches = True   # the content matrix is per image; one style code serves the whole batch
    options = (Option("model", "text", DEFAULT_MODEL, "trained LST transformation module: manifest name or "
                      ".safetensors file (brushstream train lst)"),)

    def __init__(self, model: str = DEFAULT_MODEL, encoder: str = ENCODER_WEIGHTS, decoder: str | None = None):
        super().__init__()
        self.encoder = normalised_vgg_encoder(encoder)
        self.decoder = vgg_decoder(LEVEL, decoder)
        self.transform: LinearTransform = trained_network(model, "lst_transform")[0]
        if self.transform.channels != CHANNELS[LEVEL]:
            raise BrushstreamError(f"{model}: transforms {self.transform.channels} channels, not {LEVEL}'s "
                                   f"{CHANNELS[LEVEL]}")

    def _encode_style(self, *, images, refs, weights):
        codes = [self.transform.style_matrix(self.encoder(s)[LEVEL]) for s in images]
        matrix = sum(w * s for w, (s, _) in zip(weights, codes))
        mean = sum(w * m for w, (_, m) in zip(weights, codes))
        return matrix, mean

    def _stylize(self, *, content, code, strength, mask, state):
        fc = self.encoder(content)[LEVEL]
        return self.decoder(blend_strength(self.transform.transfer(fc, *code.data), fc, strength))
