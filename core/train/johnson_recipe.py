"""Johnson, Alahi & Fei-Fei 2016, sec. 3-4: one transform net per style, trained with the content loss at
relu2_2, the Gram style loss at relu1_2..relu4_3 and total variation, Adam at 1e-3, batch 4.
Deviations for this CPU: 192 px crops and a few thousand steps (paper: 256 px, 40k steps on COCO), a cosine
learning-rate decay, and a file stored in float16 (half the bytes; loading casts back to float32)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..errors import BrushstreamError
from ..nets.johnson import PAPER_WIDTH, TransformNet
from .perceptual import PerceptualRecipe, half
from .recipe import hp, register_recipe


@register_recipe
@dataclass
class JohnsonRecipe(PerceptualRecipe):
    name = "johnson"
    method = "johnson"
    summary = "Johnson et al. 2016 transform net, one style"

    width: int = hp(PAPER_WIDTH, "paper", help="channels of the first layer (then x2, x4)", minimum=1)
    residual_blocks: int = hp(5, "paper", help="residual blocks at the bottleneck", minimum=0)
    storage: str = hp("float16", help="dtype of the saved file", choices=("float16", "float32"))

    def build_model(self) -> TransformNet:
        torch.manual_seed(self.seed)
        return TransformNet(self.width, self.residual_blocks)

    def setup(self, device: torch.device) -> None:
        if len(self.style) != 1:
            raise BrushstreamError(f"a Johnson network learns one style; got {len(self.style)} --style images "
                                   f"(train one network per style, or use msgnet)")
        self.setup_loss_network(device)
        self.grams = self.loss_net.style_grams(self.load_style_images(device)[0])

    def losses(self, model, content, step, rng):
        return self.perceptual_terms(model(content), content, self.grams)

    @torch.no_grad()
    def preview(self, model, content):
        return model(content).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "johnson_transform", "config": json.dumps(model.config()),
                "styles": json.dumps(self.style_names())}
        return half(model.state_dict(), self.storage), meta
