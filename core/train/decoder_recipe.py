"""Reconstruction decoders for relu2_1 and relu1_1 of the normalised VGG19 encoder.

Recipe after Li et al. 2017 (WCT), section 3: minimise ||I_o - I_i||^2 + lambda ||E(I_o) - E(I_i)||^2 with
lambda = 1, encoder frozen. Deviations: the feature term is divided by the features' mean energy (the
normalised VGG works on a 0-255 scale, so the raw term would drown the pixel term); CPU recipe: 192 px crops of the 500 BSDS500 photos instead of COCO,
and a few thousand Adam steps; the relu2_1 decoder starts from the tail (conv9..conv11) of the
pretrained relu3_1 decoder, which has the same shapes.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..image import list_images, load_image
from ..nets.pretrained import ENCODER_WEIGHTS, normalised_vgg_encoder, vgg_decoder
from ..nets.vgg_normalised import STRIDE, VGGDecoder
from ..ops.resize import crop_to, pad_to_multiple
from ..weights import load_state_dict, save_weights
from .datasets import RandomCrops
from .loop import train


@dataclass
class DecoderRecipe:
    level: str = "relu2_1"
    data: str = "../shared/data/content"
    steps: int = 2000
    batch: int = 8
    crop: int = 192
    lr: float = 1e-3
    feature_weight: float = 1.0
    init_from_r31: bool = True
    seed: int = 0
    encoder: str = ENCODER_WEIGHTS


def _initial_decoder(recipe: DecoderRecipe) -> VGGDecoder:
    torch.manual_seed(recipe.seed)
    dec = VGGDecoder(recipe.level)
    if recipe.init_from_r31 and recipe.level != "relu1_1":
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


def train_decoder(recipe: DecoderRecipe, out: str | Path, checkpoint: str | Path | None = None,
                  progress: bool = True, checkpoint_every: int = 100, on_step=None) -> dict:
    """Train, then write ``out`` (safetensors, config in metadata); returns the metadata written."""
    if recipe.level not in STRIDE or recipe.level == "relu3_1":
        raise BrushstreamError(f"decoder training is for relu2_1 or relu1_1, got {recipe.level!r}")
    encoder = normalised_vgg_encoder(recipe.encoder)
    data = RandomCrops(recipe.data, crop=recipe.crop, seed=recipe.seed)
    decoder = _initial_decoder(recipe)
    optim = torch.optim.Adam(decoder.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, recipe.steps) / recipe.steps)) * 0.9 + 0.1)
    taps = (recipe.level,)

    def loss_fn(_step: int) -> torch.Tensor:
        x = data.batch(recipe.batch)
        with torch.no_grad():
            f = encoder(x, taps)[recipe.level]
        y = decoder(f)
        feat_term = F.mse_loss(encoder(y, taps)[recipe.level], f) / f.pow(2).mean().clamp_min(1e-8)
        return F.mse_loss(y, x) + recipe.feature_weight * feat_term

    state = train(decoder, optim, loss_fn, recipe.steps, checkpoint=checkpoint, scheduler=sched,
                  rng_state=(data.state, data.load_state), progress=progress,
                  checkpoint_every=checkpoint_every, on_step=on_step)
    psnr = reconstruction_psnr(decoder, recipe.level, Path(recipe.data).parent / "content_eval", recipe.encoder)
    metadata = {
        "arch": "vgg_decoder", "level": recipe.level, "encoder": recipe.encoder,
        "recipe": json.dumps(asdict(recipe)), "final_loss": f"{state.losses[-1]:.6f}",
        "psnr_content_eval": f"{psnr:.2f}",
        "source": "trained by Brushstream (core/train/decoder_recipe.py) on BSDS500 photos",
    }
    save_weights(out, {k: v.detach().contiguous() for k, v in decoder.state_dict().items()}, metadata)
    return metadata


@torch.no_grad()
def reconstruction_psnr(decoder: torch.nn.Module, level: str, folder: str | Path,
                        encoder_weights: str = ENCODER_WEIGHTS) -> float:
    """Mean PSNR (dB) of decode(encode(x)) over a folder of photos at their own size."""
    encoder = normalised_vgg_encoder(encoder_weights)
    decoder.eval()
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
