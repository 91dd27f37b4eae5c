"""Style-Swap's inverse network (Chen & Schmidt 2016, section 4): a decoder trained on the features it will be given,
the style-swapped ones, not only on a photo's own.

Objective (eq. 6): min_f E ||Phi(f(Psi)) - Psi||^2 + lambda TV(f(Psi)), Psi the relu3_1 activations of a photo or of a
photo swapped with a style's patches, Phi the encoder; there is no target image for a swapped map, so the loss lives
in feature space. Deviations (paper values in brackets): the decoder is the VGG mirror the other methods use, started
from the bundled relu3_1 reconstruction decoder [a VGG mirror with instance norm, trained from scratch on COCO and
WikiArt]; the photo's own activations also keep a pixel term (weight --pixel-weight) so the fine-tune does not forget
plain reconstruction [features only]; the feature term is divided by the features' mean energy, as the reconstruction
decoders' recipe does; BSDS500 crops at 128 px and the project's style folder without the held-out paintings [COCO
and WikiArt]; lambda = 1e-6 on a 0-1 image, as the paper.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nets.pretrained import DECODER_WEIGHTS, ENCODER_WEIGHTS, normalised_vgg_encoder
from ..nets.vgg_decoder import VGGDecoder
from ..ops.patch_swap import style_swap
from .data import (
    check_zoom,
    held_out_hp,
    load_styles,
    random_style_crop,
    style_dir_hp,
    style_zoom_hp,
    training_style_paths,
)
from .decoder_recipe import copy_shared_layers
from .recipe import Recipe, hp, register_recipe

LEVEL = "relu3_1"


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


@register_recipe
@dataclass
class SwapInverseRecipe(Recipe):
    name = "swap_inverse"
    method = "swap"
    summary = "Style-Swap's inverse network (Chen & Schmidt 2016): a relu3_1 decoder trained on style-swapped features"

    style_dir: str = style_dir_hp()
    held_out: tuple[str, ...] = held_out_hp()
    size: int = hp(128, paper="256", help="training crop size in px (content and style)", minimum=16)
    batch: int = hp(8, help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-4, paper="1e-3 from scratch", help="Adam learning rate", minimum=0)
    swapped_fraction: float = hp(0.75, paper="both kinds, share not given", help="share of each batch whose "
                                 "features are swapped with a style's patches (the rest: the photo's own)",
                                 minimum=0, maximum=1)
    patch_size: int = hp(3, "paper", help="patch size of the swap in relu3_1 feature pixels", minimum=1)
    tv_weight: float = hp(1e-6, "paper", help="lambda, the total variation weight", minimum=0)
    pixel_weight: float = hp(1.0, paper="0", help="weight of the pixel term on unswapped samples", minimum=0)
    style_size: int = hp(512, help="longer side the style images are loaded at", minimum=16)
    style_zoom: tuple[float, ...] = style_zoom_hp()
    start_from: str = hp(DECODER_WEIGHTS[LEVEL], paper="random", help="decoder this one starts from (manifest name "
                         "or file); 'none' for random")
    encoder: str = hp(ENCODER_WEIGHTS, help="normalised VGG19 weights (manifest name or file)", cli=False)

    def check(self) -> None:
        super().check()
        check_zoom(self.style_zoom)

    def build_model(self) -> VGGDecoder:
        torch.manual_seed(self.seed)
        decoder = VGGDecoder(LEVEL)
        if self.start_from != "none":
            copy_shared_layers(decoder, self.start_from)
        return decoder.requires_grad_(True)

    def setup(self, device: torch.device) -> None:
        self.encoder_net = normalised_vgg_encoder(self.encoder).to(device)
        self.paths = training_style_paths(self.style, self.style_dir, self.held_out)
        self.styles = [s.to(device) for s in load_styles(self.paths, self.style_size)]

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder_net(images)[LEVEL]

    @torch.no_grad()
    def _inputs(self, content: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's inputs for a batch and which of them are swapped: the first ``swapped_fraction`` of the
        batch (rounded) gets each sample a random style crop's patches."""
        feats = self._features(content)
        swapped = torch.zeros(len(feats), dtype=torch.bool)
        n = round(self.swapped_fraction * len(feats))
        out = []
        for i, f in enumerate(feats.split(1)):
            if i < n:
                style = self.styles[int(torch.randint(len(self.styles), (), generator=rng))]
                crop = random_style_crop(style, self.size, self.style_zoom, rng)
                f = style_swap(f, self._features(crop), self.patch_size)
                swapped[i] = True
            out.append(f)
        return torch.cat(out), swapped.to(feats.device)

    def losses(self, model, content, step, rng):
        psi, swapped = self._inputs(content, rng)
        y = model(psi)
        err = (self._features(y) - psi).pow(2).mean(dim=(1, 2, 3)) / psi.pow(2).mean().clamp_min(1e-8)
        # TV summed over each image's pixels (mean over channels and batch), on the 0-1 scale, as the paper weighs it.
        terms = {"feature": err.mean(), "tv": self.tv_weight * total_variation(y) * y.shape[-1] * y.shape[-2]}
        own = ~swapped
        pixel = F.mse_loss(y[own], content[own]) if own.any() else y.sum() * 0
        terms["pixel"] = self.pixel_weight * pixel
        terms["total"] = terms["feature"] + terms["tv"] + terms["pixel"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        rng = torch.Generator().manual_seed(self.seed)
        psi, _ = self._inputs(content, rng)
        return model(psi).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "vgg_decoder", "level": LEVEL, "width": "1.0", "encoder": self.encoder,
                "trained_for": "swap", "swapped_fraction": str(self.swapped_fraction),
                "patch_size": str(self.patch_size),
                "styles": json.dumps([p.stem for p in self.paths]),
                "held_out": json.dumps([] if self.style else list(self.held_out)),
                "source": "trained by Brushstream (core/train/swap_inverse_recipe.py)"}
        if self.start_from != "none":
            meta["start_from"] = self.start_from
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta
