"""Linear Style Transfer: Li, Liu, Kautz & Yang, "Learning Linear Transformations for Fast Image and Video Style
Transfer", CVPR 2019: a trained transformation module (core/nets/lst.py, recipe core/train/lst_recipe.py) between a
frozen encoder and decoder at the level its file names: relu3_1 (the bundled normalised VGG19 pair, as AdaIN's light
level) or relu4_1 (the VGG16 encoder and its reconstruction decoder, the paper's artistic model).
The style code is the style branch's matrix S and the style's feature mean, made once and reused for every frame (the
paper's video mode: per frame only the content matrix is computed; a new style image is a new code between two frames,
nothing is reloaded). Blending several styles takes the weighted sum of their S and means: T = S C is linear in S, so
this is the linear interpolation of T, and of the target features. Strength blends features (AdaIN's alpha).
Deviations: see core/nets/lst.py (the module) and core/train/lst_recipe.py (its training).
"""
from __future__ import annotations

from ..errors import BrushstreamError
from ..nets.lst import LinearTransform
from ..nets.pretrained import (
    DECODER_WEIGHTS,
    ENCODER_WEIGHTS,
    VGG16_DOWNLOAD,
    VGG16_WEIGHTS,
    level_encoders,
    trained_network,
    vgg_decoder,
)
from ..nets.vgg16_encoder import CHANNELS, STRIDE
from .base import CONTEXT_CELLS, PALETTE, WORK_SIZE, Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "lst_r31"


@register
class LinearStyleTransfer(StyleMethod):
    name = "lst"
    summary = "Linear Style Transfer, Li et al. 2019: a learned linear feature transform, any style, live at 256 px"
    needs_download = f"{VGG16_DOWNLOAD} and lst_r41 itself (10 MB): with --model lst_r41"
    # An image method: its stability comes from the linear transform; the base class's flow-guided state still applies.
    capabilities = Capabilities(arbitrary_style=True, realtime=True, trainable=True)
    # 640x360 into OBS on 2 cores (bench/results/obs_live.json): 7.3 fps at 256 px, 3.8 fps at 384.
    live_options = {"work_size": 256}
    stride = STRIDE["relu3_1"]   # per instance: the model's level's
    batches = True   # the content matrix is per image; one style code serves the whole batch
    options = (Option("model", "text", DEFAULT_MODEL, "trained LST transformation module: manifest name or "
                      ".safetensors file (brushstream train lst); its file says which level it works at", weights="model"),
               WORK_SIZE, PALETTE)

    def __init__(self, model: str = DEFAULT_MODEL, work_size: int = 0, palette: float = 0.0,
                 encoder: str = ENCODER_WEIGHTS, decoder: str | None = None, vgg16: str = VGG16_WEIGHTS):
        super().__init__()
        self.transform: LinearTransform
        self.transform, meta, _ = trained_network(model, "lst_transform")
        self.level, self.work_size, self.palette = meta.get("level", "relu3_1"), work_size, palette
        if self.level not in DECODER_WEIGHTS:
            raise BrushstreamError(f"{model}: works at an unknown level {self.level!r}")
        if self.transform.channels != CHANNELS[self.level]:
            raise BrushstreamError(f"{model}: transforms {self.transform.channels} channels, not {self.level}'s "
                                   f"{CHANNELS[self.level]}")
        self.stride = STRIDE[self.level]
        self.context = CONTEXT_CELLS * self.stride
        self.encoder = next(iter(level_encoders((self.level,), encoder, vgg16).values()))
        self.decoder = vgg_decoder(self.level, decoder or meta.get("decoder") or DECODER_WEIGHTS[self.level])

    def _encode_style(self, *, images, refs, weights):
        codes = [self.transform.style_matrix(self.encoder(s, (self.level,))[self.level]) for s in images]
        matrix = sum(w * s for w, (s, _) in zip(weights, codes))
        mean = sum(w * m for w, (_, m) in zip(weights, codes))
        return matrix, mean

    def _stylize(self, *, content, code, strength, mask, state):
        fc = self.encoder(content, (self.level,))[self.level]
        return self.decoder(blend_strength(self.transform.transfer(fc, *code.data), fc, strength))
