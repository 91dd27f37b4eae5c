"""MetaNet (Shen, Yan & Zeng 2018, sec. 3-4): the meta network is trained over a set of styles with Johnson's
perceptual losses on the transform net it generates; a new style then needs one forward pass. Deviations: a few
dozen training styles instead of the paper's WikiArt set, one style per image instead of per step (a grouped
convolution runs the batch's networks), CPU crop size and step count, smaller hidden layer and transform width
(see nets/metanet.py), cosine decay, float16 file."""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..nets.metanet import STYLE_LAYERS, MetaNet, style_statistics
from .perceptual import PerceptualRecipe, half, pick_styles, style_per_image_hp
from .recipe import hp, register_recipe


@register_recipe
@dataclass
class MetaNetRecipe(PerceptualRecipe):
    name = "metanet"
    method = "metanet"
    summary = "MetaNet (Shen et al. 2018), a transform net written from any style image"

    width: int = hp(8, paper="32", help="channels of the generated transform net's first layer", minimum=1)
    residual_blocks: int = hp(5, "paper", help="residual blocks of the generated transform net", minimum=0)
    hidden: int = hp(16, paper="128 per group", help="hidden units per layer group of the meta network", minimum=1)
    style_per_image: bool = style_per_image_hp()
    storage: str = hp("float16", help="dtype of the saved file", choices=("float16", "float32"))

    def build_model(self) -> MetaNet:
        torch.manual_seed(self.seed)
        return MetaNet(self.width, self.residual_blocks, self.hidden)

    def setup(self, device: torch.device) -> None:
        self.setup_loss_network(device)
        images = self.load_style_images(device)
        self.grams = [self.loss_net.style_grams(s) for s in images]
        with torch.no_grad():
            self.stats = [style_statistics(self.loss_net.vgg(s, STYLE_LAYERS)) for s in images]

    def prepare_model(self, model: MetaNet) -> None:
        model.standardise_over(torch.cat(self.stats).cpu())

    def losses(self, model, content, step, rng):
        indices = pick_styles(rng, len(self.style), self.batch, content.shape[0], self.style_per_image)
        if not self.style_per_image:
            return self.perceptual_terms(model(content, self.stats[indices[0]]), content, self.grams[indices[0]])
        # One generated network per image (a grouped convolution runs them all).
        targets = {name: torch.cat([self.grams[i][name] for i in indices]) for name in self.style_layers}
        return self.perceptual_terms(model(content, torch.cat([self.stats[i] for i in indices])), content, targets)

    @torch.no_grad()
    def preview(self, model, content):
        return torch.cat([model(content[i:i + 1], self.stats[i % len(self.stats)])
                          for i in range(content.shape[0])]).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "metanet", "config": json.dumps(model.config()), "styles": json.dumps(self.style_names())}
        return half(model.state_dict(), self.storage), meta
