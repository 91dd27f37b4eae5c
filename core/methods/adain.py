"""AdaIN: Huang & Belongie, "Arbitrary Style Transfer in Real-time with Adaptive Instance Normalization", ICCV 2017.
``level="relu4_1"``: the paper's setting, on the VGG16 ImageNet encoder (not VGG19) with a decoder trained here with the
paper's content + mean/std style loss (core/train/adain_recipe.py). ``level="relu3_1"``: the light default, the bundled
normalised VGG19 encoder with a decoder trained here with the same losses (content in that network, style on VGG16
relu1_1..relu4_1), so it needs no download. ``level="fast"``: a slim
student encoder distilled from the level's encoder (Collaborative Distillation, Wang et al. 2020) and a slim decoder
trained on its features with the same losses (both small and bundled; the decoder's file names its level and student):
relu3_1 by default, the relu4_1 pair by --decoder. Deviation (speed only, exact): the student's embedding, AdaIN and the
decoder's first convolution run as one convolution (ops/adain_fold.py).
The authors' pair as pytorch-AdaIN released it (core/foreign/adain_release.py): ``--level relu4_1 --decoder
decoder.pth`` (or its converted .safetensors) reads the normalised VGG19 to relu4_1, vgg_normalised.pth, which the
decoder's file names and which is found beside it (--encoder gives it elsewhere), and AdaIN takes the unbiased variance
there, as that decoder was trained; with the same image (a multiple of 8 px, no context) the output is the release's.
"""
from __future__ import annotations

import torch

from ..errors import BrushstreamError
from ..hub import weights as weight_store
from ..nets.pretrained import (
    ENCODER_WEIGHTS,
    VGG16_DOWNLOAD,
    VGG16_WEIGHTS,
    check_pair,
    decoder_input_encoder,
    decoder_level,
    encoder_network,
    level_encoders,
    vgg_decoder,
)
from ..nets.student_encoder import LEVEL_TEACHER, StudentEncoder
from ..nets.vgg16_encoder import STRIDE
from ..ops.adain import adain
from ..ops.adain_fold import folded_first_conv
from ..ops.stats import mean_std
from .base import CONTEXT_CELLS, PALETTE, WORK_SIZE, Capabilities, StyleCode, StyleMethod, blend_strength
from .options import Option
from .registry import register

LEVELS = ("relu4_1", "relu3_1", "fast")
# The decoder each level uses, each trained with AdaIN's style loss (the relu3_1 reconstruction decoder it started from,
# vgg19_normalised_r31_decoder, stays a --decoder choice); "fast" is the distilled pair: a slim student encoder
# (named in the decoder's file) and a slim decoder, at the level the decoder's file names.
DECODERS = {"relu4_1": "adain_vgg16_r41_decoder", "relu3_1": "adain_vgg19n_r31_decoder",
            "fast": "adain_student_r31_decoder_w05"}


@register
class AdaIN(StyleMethod):
    name = "adain"
    summary = "AdaIN, Huang & Belongie 2017: fast arbitrary style"
    needs_download = f"{VGG16_DOWNLOAD}: with --level relu4_1"
    capabilities = Capabilities(arbitrary_style=True, realtime=True, spatial_mask=True)
    # Live: the distilled fast pair at LST's live work size (docs/benchmarks/measurements.md, "The OBS filter").
    live_options = {"level": "fast", "work_size": 256}
    stride = STRIDE["relu4_1"]   # the finest that serves both levels; set per instance below
    batches = True   # instance statistics are per image inside the batch
    options = (
        Option("level", "choice", "relu3_1", "encoder level: relu4_1 (VGG16, style-trained decoder), relu3_1 "
               "(bundled light VGG19 encoder, style-trained decoder) or fast (relu3_1 through a bundled student pair "
               "distilled from the VGG19 and its decoder; --decoder adain_student_r41_decoder_w025: the relu4_1 pair)",
               choices=LEVELS, paper="relu4_1"),
        Option("encoder", "text", "auto", "a distilled student encoder file (brushstream train distill; --teacher "
               "vgg16 for relu4_1, vgg19n for relu3_1) or a normalised VGG19 file (pytorch-AdaIN's vgg_normalised.pth) "
               "in place of the level's encoder; auto: the one the decoder was trained on (a fast-path decoder names "
               "its student, pytorch-AdaIN's decoder.pth its VGG19 beside it), else the level's own encoder",
               weights="encoder"),
        Option("decoder", "text", "auto", "decoder weights for the level (manifest name or .safetensors file, or "
               "pytorch-AdaIN's decoder.pth at relu4_1); "
               "auto: the level's own (" + ", ".join(f"{lv}: {name}" for lv, name in DECODERS.items()) + ")", weights="decoder"),
        WORK_SIZE, PALETTE,
    )

    def __init__(self, level: str = "relu3_1", encoder: str = "auto", decoder: str = "auto", work_size: int = 0,
                 palette: float = 0.0, vgg19n: str = ENCODER_WEIGHTS, vgg16: str = VGG16_WEIGHTS):
        super().__init__()
        decoder = DECODERS[level] if decoder == "auto" else decoder
        level = decoder_level(decoder, "relu4_1") if level == "fast" else level
        self.level, self.work_size, self.palette = level, work_size, palette
        self.stride = STRIDE[level]
        self.context = CONTEXT_CELLS * self.stride
        if encoder == "auto":   # a decoder trained on a student's features (the fast path) names that student
            encoder = decoder_input_encoder(decoder) or "auto"
        if encoder == "auto":
            self.encoder = next(iter(level_encoders((level,), vgg19n, vgg16).values()))
        else:   # the fast path's slim student, or a normalised VGG19 built to the level (pytorch-AdaIN's)
            self.encoder = encoder_network(encoder, level)
            if isinstance(self.encoder, StudentEncoder) and self.encoder.teacher != LEVEL_TEACHER[level]:
                raise BrushstreamError(f"{encoder}: a student of {self.encoder.teacher} cannot stand in at {level} "
                                       f"(that needs one distilled from {LEVEL_TEACHER[level]})")
        self.decoder = vgg_decoder(level, decoder)
        check_pair(self.encoder, self.decoder, decoder)
        # The statistics the decoder was trained with: the biased variance here, the unbiased one in pytorch-AdaIN.
        variance = weight_store.read_metadata(weight_store.resolve(decoder)).get("variance", "biased")
        if variance not in ("biased", "unbiased"):
            raise BrushstreamError(f"{decoder}: unknown AdaIN variance {variance!r} (biased or unbiased)")
        self.unbiased = variance == "unbiased"

    def _encode_style(self, *, images, refs, weights):
        # Per-style statistics, blended at stylize time (style_stats): a spatial mask composites two styles instead.
        return [mean_std(self.encoder(s, (self.level,))[self.level], unbiased=self.unbiased) for s in images]

    def _stylize(self, *, content, code, strength, mask, state):
        if mask is None and isinstance(self.encoder, StudentEncoder) and not self.unbiased:
            # The fast path: the student's embedding, AdaIN and the decoder's first convolution are one convolution
            # over the student's own channels (exact; ops/adain_fold.py).
            native = self.encoder(content, (self.level,), embedded=False)[self.level]
            mean, std = self.style_stats(code)

            def first(x: torch.Tensor) -> torch.Tensor:
                return folded_first_conv(x, self.encoder.embed[self.level], self.encoder.unit[self.level],
                                         self.decoder.first_conv, mean, std, strength)
            return self.decoder(native, first=first)
        return self.decoder(self.transfer(self.encoder(content, (self.level,))[self.level], code, strength, mask))

    @staticmethod
    def style_stats(code: StyleCode) -> tuple[torch.Tensor, torch.Tensor]:
        """The blend's mean and std: AdaIN is affine in them, so the paper's weighted sum of AdaIN outputs (section
        7.3, style interpolation) is AdaIN with the weighted statistics."""
        mean = sum(w * m for w, (m, _) in zip(code.weights, code.data))
        std = sum(w * s for w, (_, s) in zip(code.weights, code.data))
        return mean, std

    def transfer(self, fc: torch.Tensor, code: StyleCode, strength: float = 1.0,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
        """Content features at the level -> target features t (eq. 8, then eq. 14 for strength)."""
        if mask is None:
            t = adain(fc, *self.style_stats(code), unbiased=self.unbiased)
        else:
            # Spatial control: each region takes its own style, with content statistics of that region.
            m = torch.nn.functional.interpolate(mask, size=fc.shape[-2:], mode="bilinear", align_corners=False)
            (fg_mean, fg_std), (bg_mean, bg_std) = code.data
            t = m * adain(fc, fg_mean, fg_std, m) + (1 - m) * adain(fc, bg_mean, bg_std, 1 - m)
        return blend_strength(t, fc, strength)
