"""Reconstruction decoders for relu2_1 and relu1_1 of the normalised VGG19 encoder (WCT's cascade).

Recipe after Li et al. 2017 (WCT), section 3: minimise ||I_o - I_i||^2 + lambda ||E(I_o) - E(I_i)||^2 with
lambda = 1, encoder frozen. Deviations: the feature term is divided by the features' mean energy (the
normalised VGG works on a 0-255 scale, so the raw term would drown the pixel term); CPU recipe: 192 px crops
of the 500 BSDS500 photos instead of COCO, a few thousand Adam steps; the relu2_1 decoder starts from the tail
(conv9..conv11) of the pretrained relu3_1 decoder, which has the same shapes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..image import list_images, load_image
from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..nets.vgg_normalised import STRIDE, VGGDecoder
from ..ops.resize import crop_to, pad_to_multiple
from ..weights import load_state_dict
from .recipe import Recipe, hp, register_recipe


@register_recipe
@dataclass
class DecoderRecipe(Recipe):
    name = "decoder"
    method = "wct"
    summary = "reconstruction decoder for a normalised VGG19 level (WCT cascade)"

    level: str = hp("relu2_1", help="the level it inverts", choices=("relu2_1", "relu1_1"))
    batch: int = hp(8, "paper", help="global batch size (split over processes under torchrun)", minimum=1)
    feature_weight: float = hp(1.0, "paper", help="lambda, the feature loss weight", minimum=0)
    init_from_r31: bool = hp(True, help="start relu2_1 from the pretrained relu3_1 decoder's tail", cli=False)
    encoder: str = hp(ENCODER_WEIGHTS, help="encoder weights (manifest name or file)", cli=False)

    def build_model(self) -> VGGDecoder:
        if self.level not in STRIDE or self.level == "relu3_1":
            raise BrushstreamError(f"decoder training is for relu2_1 or relu1_1, got {self.level!r}")
        torch.manual_seed(self.seed)
        dec = VGGDecoder(self.level)
        if self.init_from_r31 and self.level != "relu1_1":
            r31 = vgg_decoder("relu3_1").state_dict()
            dec.load_state_dict({k: r31[k].clone() for k in dec.state_dict()})
        else:
            # The encoder's features are on a 0-255 scale: shrink the first layer so training starts
            # from outputs near [0, 1] instead of spending its steps undoing a huge initial error.
            first = getattr(dec, dec.plan[0][0])
            with torch.no_grad():
                first.weight.mul_(1.0 / 255.0)
                first.bias.zero_().add_(0.5 if dec.plan[0][2] == 3 else 0.0)
        return dec.requires_grad_(True)

    def setup(self, device: torch.device) -> None:
        self.encoder_net = normalised_vgg_encoder(self.encoder).to(device)

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
        meta = {"arch": "vgg_decoder", "level": self.level, "encoder": self.encoder,
                "source": "trained by Brushstream (core/train/decoder_recipe.py)"}
        evaluation = Path(self.content_dir).parent / "content_eval"
        if evaluation.is_dir():
            meta["psnr_content_eval"] = f"{reconstruction_psnr(model, self.level, evaluation, self.encoder):.2f}"
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta


@torch.no_grad()
def reconstruction_psnr(decoder: torch.nn.Module, level: str, folder: str | Path,
                        encoder_weights: str = ENCODER_WEIGHTS) -> float:
    """Mean PSNR (dB) of decode(encode(x)) over a folder of photos at their own size."""
    encoder = normalised_vgg_encoder(encoder_weights)
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
    """A trained decoder file rebuilt from its own metadata (the level it inverts)."""
    _, meta = load_state_dict(path)
    return vgg_decoder(meta.get("level", "relu3_1"), str(path))
