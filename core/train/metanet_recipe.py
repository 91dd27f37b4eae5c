"""MetaNet (Shen, Yan & Zeng 2018, sec. 3-4): the meta network is trained over a set of styles, one style per
step, with Johnson's perceptual losses on the transform net it generates; a new style then needs one forward
pass. Deviations: a few dozen training styles instead of the paper's WikiArt set, CPU crop size and step
count, smaller hidden layer and transform width (see nets/metanet.py), cosine decay, float16 file."""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..nets.metanet import STYLE_LAYERS, MetaNet, style_statistics
from .perceptual import PerceptualRecipe, half
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

    def losses(self, model, content, step, rng):
        index = int(torch.randint(len(self.style), (), generator=rng))
        return self.perceptual_terms(model(content, self.stats[index]), content, self.grams[index])

    @torch.no_grad()
    def preview(self, model, content):
        return torch.cat([model(content[i:i + 1], self.stats[i % len(self.stats)])
                          for i in range(content.shape[0])]).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "metanet", "config": json.dumps(model.config()), "styles": json.dumps(self.style_names())}
        return half(model.state_dict(), self.storage), meta
