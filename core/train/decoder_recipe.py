"""Reconstruction decoders for one encoder level: relu2_1/relu1_1 of the normalised VGG19 (WCT's light cascade) and
relu4_1/relu5_1 of the VGG16 ImageNet encoder (WCT's five-level cascade, LST at relu4_1, AdaIN's starting point).

Recipe after Li et al. 2017 (WCT), section 3: minimise ||I_o - I_i||^2 + lambda ||E(I_o) - E(I_i)||^2 with
lambda = 1, encoder frozen. Deviations: the feature term is divided by the features' mean energy (both encoders work
on a 0-255 scale, so the raw term would drown the pixel term); CPU recipe: small crops of the 500 BSDS500 photos
instead of COCO, a few hundred to a few thousand Adam steps; every layer a decoder shares with --start-from (by
default the next pretrained decoder whose plan overlaps this one: relu3_1's for relu2_1 and relu4_1, relu4_1's for
relu5_1) starts from those weights, so only the new layers start at random.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..hub.weights import load_state_dict
from ..io.image import list_images, load_image
from ..nets.pretrained import (
    DECODER_WEIGHTS,
    ENCODER_WEIGHTS,
    VGG16_WEIGHTS,
    encoder_family,
    level_encoders,
    verified_state_dict,
    vgg_decoder,
)
from ..nets.vgg16_encoder import STRIDE
from ..nets.vgg_decoder import VGGDecoder
from ..ops.resize import crop_to, pad_to_multiple
from .recipe import Recipe, hp, register_recipe

TRAINABLE_LEVELS = ("relu1_1", "relu2_1", "relu4_1", "relu5_1")
START_FROM = {"relu2_1": DECODER_WEIGHTS["relu3_1"], "relu4_1": DECODER_WEIGHTS["relu3_1"],
              "relu5_1": DECODER_WEIGHTS["relu4_1"]}


def copy_shared_layers(decoder: VGGDecoder, source: str) -> list[str]:
    """Copy into ``decoder`` every tensor of ``source`` with the same name and shape; returns the names copied."""
    tensors = verified_state_dict(source)
    own = decoder.state_dict()
    shared = [k for k, v in own.items() if k in tensors and tensors[k].shape == v.shape]
    if not shared:
        raise BrushstreamError(f"{source}: shares no layer with a {decoder.level} decoder (--start-from)")
    decoder.load_state_dict({**own, **{k: tensors[k].clone() for k in shared}})
    return shared


@register_recipe
@dataclass
class DecoderRecipe(Recipe):
    name = "decoder"
    method = "wct"
    summary = "reconstruction decoder for one encoder level (WCT cascade, LST and AdaIN at relu4_1)"

    level: str = hp("relu2_1", help="the level it inverts: relu2_1/relu1_1 of the bundled VGG19, relu4_1/relu5_1 "
                    "of VGG16", choices=TRAINABLE_LEVELS)
    batch: int = hp(8, "paper", help="global batch size (split over processes under torchrun)", minimum=1)
    feature_weight: float = hp(1.0, "paper", help="lambda, the feature loss weight", minimum=0)
    start_from: str = hp("", help="decoder whose shared layers start this one (manifest name or file); default: the "
                         "overlapping pretrained decoder, 'none' for random")
    width: float = hp(1.0, "paper", help="hidden channel scale of the decoder (below 1: a slim student)", minimum=0.05)
    encoder: str = hp(ENCODER_WEIGHTS, help="normalised VGG19 weights (manifest name or file)", cli=False)
    vgg16: str = hp(VGG16_WEIGHTS, help="VGG16 weights for relu4_1/relu5_1 (manifest name or file)", cli=False)

    def start_source(self) -> str | None:
        if self.start_from == "none":
            return None
        return self.start_from or (START_FROM.get(self.level) if self.width == 1.0 else None)

    def build_model(self) -> VGGDecoder:
        if self.level not in TRAINABLE_LEVELS:
            raise BrushstreamError(f"decoder training is for {', '.join(TRAINABLE_LEVELS)}, got {self.level!r}")
        torch.manual_seed(self.seed)
        dec = VGGDecoder(self.level, self.width)
        source = self.start_source()
        if source:
            copy_shared_layers(dec, source)
        else:
            # The encoders' features are on a 0-255 scale: shrink the first layer so training starts
            # from outputs near [0, 1] instead of spending its steps undoing a huge initial error.
            first = getattr(dec, dec.plan[0][0])
            with torch.no_grad():
                first.weight.mul_(1.0 / 255.0)
                first.bias.zero_().add_(0.5 if dec.plan[0][2] == 3 else 0.0)
        return dec.requires_grad_(True)

    def setup(self, device: torch.device) -> None:
        self.encoder_net = level_encoders((self.level,), self.encoder, self.vgg16)[encoder_family(self.level)].to(device)

    def losses(self, model, content, step, rng):
        taps = (self.level,)
        with torch.no_grad():
            f = self.encoder_net(content, taps)[self.level]
        y = model(f)
        feat = F.mse_loss(self.encoder_net(y, taps)[self.level], f) / f.pow(2).mean().clamp_min(1e-8)
        terms = {"pixel": F.mse_loss(y, content), "feature": self.feature_weight * feat}
        terms["total"] = terms["pixel"] + terms["feature"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        return model(self.encoder_net(content, (self.level,))[self.level]).clamp(0, 1)

    def export(self, model):
        family = encoder_family(self.level)
        meta = {"arch": "vgg_decoder", "level": self.level, "width": str(self.width),
                "encoder": self.vgg16 if family == "vgg16" else self.encoder,
                "source": "trained by Brushstream (core/train/decoder_recipe.py)"}
        if self.start_source():
            meta["start_from"] = self.start_source()
        evaluation = Path(self.content_dir).parent / "content_eval" if self.content_dir else None
        if evaluation is not None and evaluation.is_dir():   # the held-out photos beside the training folder
            meta["psnr_content_eval"] = f"{reconstruction_psnr(model, self.level, evaluation, self.encoder_net):.2f}"
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta


@torch.no_grad()
def reconstruction_psnr(decoder: torch.nn.Module, level: str, folder: str | Path,
                        encoder: torch.nn.Module | None = None) -> float:
    """Mean PSNR (dB) of decode(encode(x)) over a folder of photos at their own size."""
    encoder = (encoder or level_encoders((level,))[encoder_family(level)]).to("cpu")
    decoder = decoder.to("cpu").eval()
    scores = []
    for path in list_images(folder):
        x = load_image(path).image
        xp, size = pad_to_multiple(x, STRIDE[level] * 2)
        y = crop_to(decoder(encoder(xp, (level,))[level]), size).clamp(0, 1)
        mse = F.mse_loss(y, x).item()
        scores.append(10 * math.log10(1.0 / max(mse, 1e-12)))
    return sum(scores) / len(scores)


def load_decoder_file(path: str | Path) -> VGGDecoder:
    """A trained decoder file rebuilt from its own metadata (the level it inverts and its width)."""
    _, meta = load_state_dict(path)
    return vgg_decoder(meta.get("level", "relu3_1"), str(path))
