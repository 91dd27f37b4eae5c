"""MicroAST (Wang et al., AAAI 2023, sec. 3.3-3.4) trained over a folder of styles with augmented style crops: every
image of a batch gets its own training style, a random crop of it at a random scale (and, with --style-jitter, a
random hue turn), and the network is scored against that crop's own statistics. Started from the official weights
(``--init-from microast_official``) it fine-tunes the release towards the project's yardstick on a CPU.

Deviations, the paper's value beside the project's:
- loss network: VGG16 (ImageNet), the project's yardstick, not the normalised VGG19 (the bundled VGG19 stops at
  relu3_1);
- content loss: relative feature distance at relu3_3 (paper: MSE at VGG19 relu4_1);
- style loss: relative Gram distance at relu1_2..relu4_3, weight 5 (paper: mean/std at relu1_1..relu5_1, weight 3);
- no style signal contrastive (SSC) loss (paper: weight 3): a fine-tune starts from signals it already shaped;
- style augmentation (random scale, crop and hue turn of each style) instead of WikiArt's 80k paintings;
- batch 4 of 256 px crops (paper: 8), Adam at 1e-4 with cosine decay (paper: 1e-4 with inverse decay), thousands of
  steps from the release's weights (paper: 160k from scratch).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch

from ..nets.microast import MicroAST
from .data import (
    check_zoom,
    held_out_hp,
    load_styles,
    random_style_crop,
    style_dir_hp,
    style_zoom_hp,
    training_style_paths,
)
from .perceptual import PerceptualRecipe, pick_styles
from .recipe import hp, register_recipe

# YIQ: luma plus two chroma axes; turning the chroma plane changes a painting's palette, never its light and dark.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def turn_hue(image: torch.Tensor, degrees: float) -> torch.Tensor:
    """``image`` (B, 3, H, W, RGB 0-1) with its chroma turned by ``degrees`` in the YIQ plane, clamped to 0-1."""
    a = math.radians(degrees)
    turn = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])
    matrix = (_YIQ_TO_RGB @ turn @ _RGB_TO_YIQ).to(image)
    return torch.einsum("ij,bjhw->bihw", matrix, image).clamp(0, 1)


@register_recipe
@dataclass
class MicroASTRecipe(PerceptualRecipe):
    name = "microast"
    method = "microast"
    summary = "MicroAST (Wang et al. 2023) over a folder of styles with augmented crops, any style, no VGG at use"

    style_dir: str = style_dir_hp()
    style_set: str = hp("", help="the manifest's set of training styles (fetched, verified and cached), whose images "
                        "join --style-dir's: public_domain_paintings")
    held_out: tuple[str, ...] = held_out_hp()
    size: int = hp(256, "paper", help="training crop size in px (content and style)", minimum=16)
    lr: float = hp(1e-4, "paper", help="Adam learning rate", minimum=0)
    content_layer: str = hp("relu3_3", paper="VGG19 relu4_1", help="VGG16 layer of the content loss")
    style_weight: float = hp(5.0, paper="3, on mean/std", help="weight of the relative Gram style loss (mean over "
                             "layers)", minimum=0)
    tv_weight: float = hp(0.0, paper="0", help="weight of total variation", minimum=0)
    style_size: int = hp(512, paper="512 then 256 crops", help="longer side the style images are loaded at",
                         minimum=16)
    style_zoom: tuple[float, ...] = style_zoom_hp()
    style_jitter: float = hp(0.5, paper="0", help="share of style crops whose hue is turned by a random angle, a new "
                             "palette on the same strokes", minimum=0, maximum=1)

    def check(self) -> None:
        super().check()
        check_zoom(self.style_zoom)

    def build_model(self) -> MicroAST:
        torch.manual_seed(self.seed)
        return MicroAST()

    def setup(self, device: torch.device) -> None:
        self.setup_loss_network(device)
        self.paths = training_style_paths(self.style, self.style_dir, self.held_out, self.style_set)
        self.styles = [s.to(device) for s in load_styles(self.paths, self.style_size)]

    def style_names(self) -> list[str]:
        return [p.stem for p in self.paths]

    def style_crops(self, indices: list[int], rng: torch.Generator) -> torch.Tensor:
        """One augmented crop per image of the batch, of the style drawn for it."""
        crops = []
        for i in indices:
            crop = random_style_crop(self.styles[i], self.size, self.style_zoom, rng)
            if float(torch.rand((), generator=rng)) < self.style_jitter:
                crop = turn_hue(crop, 360.0 * float(torch.rand((), generator=rng)))
            crops.append(crop)
        return torch.cat(crops)

    def losses(self, model, content, step, rng):
        indices = pick_styles(rng, len(self.styles), self.batch, content.shape[0], per_image=True)
        crops = self.style_crops(indices, rng)
        grams = self.loss_net.style_grams(crops)   # each image is scored against its own crop
        return self.perceptual_terms(model(content, crops), content, grams)

    @torch.no_grad()
    def preview(self, model, content):
        # Preview image i shows training style i, the whole style image.
        return torch.cat([model(content[i:i + 1], self.styles[i % len(self.styles)])
                          for i in range(content.shape[0])]).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "microast", "styles": json.dumps(self.style_names()),
                "held_out": json.dumps([] if self.style else list(self.held_out)),
                "source": "trained by Brushstream (core/train/microast_recipe.py)"}
        return {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}, meta
