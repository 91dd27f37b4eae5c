"""Linear Style Transfer: Li, Liu, Kautz & Yang, "Learning Linear Transformations for Fast Image and Video Style
Transfer", CVPR 2019: a trained transformation module (core/nets/lst.py, recipe core/train/lst_recipe.py) between a
frozen encoder and decoder at the level its file names: relu3_1 (the bundled normalised VGG19 pair, as AdaIN's light
level) or relu4_1 (the VGG16 encoder and its reconstruction decoder, the paper's artistic model).
The style code is the style branch's matrix S and the style's feature mean, made once and reused for every frame (the
paper's video mode: per frame only the content matrix is computed; a new style image is a new code between two frames,
nothing is reloaded). Blending several styles takes the weighted sum of their S and means: T = S C is linear in S, so
this is the linear interpolation of T, and of the target features. Strength blends features (AdaIN's alpha).
Deviations: see core/nets/lst.py (the module) and core/train/lst_recipe.py (its training).
The authors' released modules (core/foreign/lst_release.py) load as --model r31.pth / r41.pth (or their converted
.safetensors): their file says the level, the normalised VGG19 family and, for r41, the encoder and decoder it was
trained with (vgg_r41.pth, dec_r41.pth, found beside it); r31 runs on the bundled pair, the release's vgg_r31/dec_r31.
"""
from __future__ import annotations

from ..errors import BrushstreamError
from ..nets.lst import LinearTransform
from ..nets.pretrained import (
    DECODER_WEIGHTS,
    ENCODER_WEIGHTS,
    VGG16_DOWNLOAD,
    VGG16_WEIGHTS,
    check_pair,
    encoder_family,
    level_encoders,
    normalised_vgg_encoder,
    paired_file,
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
    archs = ("lst_transform",)
    batches = True   # the content matrix is per image; one style code serves the whole batch
    options = (Option("model", "text", DEFAULT_MODEL, "trained LST transformation module: manifest name or "
                      ".safetensors file (brushstream train lst), or the authors' r31.pth / r41.pth; its file says which "
                      "level it works at", weights="model"),
               Option("encoder", "text", "auto", "the encoder the model reads (manifest name or file, e.g. the authors' "
                      "vgg_r41.pth); auto: the one the model's file names (found beside it), else the level's own",
                      weights="encoder"),
               Option("decoder", "text", "auto", "the decoder for the model's level (manifest name or file, e.g. the "
                      "authors' dec_r41.pth); auto: the one the model's file names (found beside it), else the level's "
                      "own", weights="decoder"),
               WORK_SIZE, PALETTE)

    def __init__(self, model: str = DEFAULT_MODEL, work_size: int = 0, palette: float = 0.0,
                 encoder: str = "auto", decoder: str = "auto", vgg16: str = VGG16_WEIGHTS):
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
        # The encoder and decoder the module was trained with: given, else named by its file (found beside it: the
        # release's r41 names vgg_r41.pth and dec_r41.pth), else the level's own.
        given = encoder != "auto"
        if encoder == "auto":
            encoder = paired_file(model, meta["input_encoder"], "encoder", "encoder") if meta.get("input_encoder") \
                else ENCODER_WEIGHTS
        if decoder == "auto":
            decoder = paired_file(model, meta["decoder"], "decoder", "decoder") if meta.get("decoder") \
                else DECODER_WEIGHTS[self.level]
        if meta.get("family", encoder_family(self.level)) != encoder_family(self.level):   # the VGG19 at relu4_1
            self.encoder = normalised_vgg_encoder(encoder, self.level)
        else:
            self.encoder = next(iter(level_encoders((self.level,), encoder, encoder if given else vgg16).values()))
        self.decoder = vgg_decoder(self.level, decoder)
        check_pair(self.encoder, self.decoder, decoder)

    def _encode_style(self, *, images, refs, weights):
        codes = [self.transform.style_matrix(self.encoder(s, (self.level,))[self.level]) for s in images]
        matrix = sum(w * s for w, (s, _) in zip(weights, codes))
        mean = sum(w * m for w, (_, m) in zip(weights, codes))
        return matrix, mean

    def _stylize(self, *, content, code, strength, mask, state):
        fc = self.encoder(content, (self.level,))[self.level]
        return self.decoder(blend_strength(self.transform.transfer(fc, *code.data), fc, strength))
