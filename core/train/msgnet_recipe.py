"""MSG-Net (Zhang & Dana 2018, sec. 4): one network for many styles. Each step takes one style, at a random
size from ``brush_sizes`` (the paper's brush-size training), through the siamese branch; perceptual losses as
Johnson's. The file keeps each learned style's CoMatch statistics at every brush size, so inference by style index
needs no style image. Deviations: CPU crop size and step count, cosine learning-rate decay, float16 file."""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..nets.msgnet import MSGNet
from .perceptual import PerceptualRecipe, half, pick_styles, style_per_image_hp
from .recipe import hp, register_recipe

BRUSH_SIZES = (256, 384, 512, 768)


@register_recipe
@dataclass
class MSGNetRecipe(PerceptualRecipe):
    name = "msgnet"
    method = "msgnet"
    summary = "MSG-Net (Zhang & Dana 2018), many styles in one network"

    width: int = hp(32, paper="128 (bottleneck blocks)", help="channels of the first layer (then x2, x4)", minimum=1)
    residual_blocks: int = hp(5, paper="6", help="residual blocks at the bottleneck", minimum=0)
    # The next three are why the network uses its style input at all on a CPU budget: with the paper's raw Gram,
    # U(0, 0.02) init and one style per batch, 400 steps gave outputs that differ by under 1% between styles
    # (the instance norms after CoMatch erase a rank-1 Gram mix); with these, 150 steps already tell styles apart.
    statistic: str = hp("covariance", paper="gram", help="style statistic CoMatch mixes with: the Gram matrix, "
                        "or the channel covariance scaled to unit mean variance", choices=("gram", "covariance"))
    comatch_init: str = hp("identity", paper="U(0, 0.02)", help="initial CoMatch weight: the paper's, or identity "
                           "plus small noise", choices=("paper", "identity"))
    style_per_image: bool = style_per_image_hp()
    brush_sizes: tuple[int, ...] = hp(BRUSH_SIZES[:3], "paper", help="style sizes drawn during training")
    storage: str = hp("float16", help="dtype of the saved file", choices=("float16", "float32"))

    def build_model(self) -> MSGNet:
        torch.manual_seed(self.seed)
        return MSGNet(self.width, self.residual_blocks, self.statistic, self.comatch_init)

    def setup(self, device: torch.device) -> None:
        self.setup_loss_network(device)
        self.styles = {size: self.load_style_images(device, size) for size in self.brush_sizes}
        self.grams = {size: [self.loss_net.style_grams(s) for s in images] for size, images in self.styles.items()}

    def _pick(self, rng: torch.Generator, images: int) -> tuple[list[int], int]:
        indices = pick_styles(rng, len(self.style), self.batch, images, self.style_per_image)
        return indices, self.brush_sizes[int(torch.randint(len(self.brush_sizes), (), generator=rng))]

    def losses(self, model, content, step, rng):
        indices, size = self._pick(rng, content.shape[0])
        if not self.style_per_image:
            index = indices[0]
            return self.perceptual_terms(model(content, self.styles[size][index]), content, self.grams[size][index])
        targets = {name: torch.cat([self.grams[size][i][name] for i in indices]) for name in self.style_layers}
        return self.perceptual_terms(model(content, [self.styles[size][i] for i in indices]), content, targets)

    @torch.no_grad()
    def preview(self, model, content):
        # The first preview row shows style 0, the next style 1, ...: one picture per style in turn.
        styles = self.styles[self.brush_sizes[len(self.brush_sizes) // 2]]
        return torch.cat([model(content[i:i + 1], styles[i % len(styles)]) for i in range(content.shape[0])]).clamp(0, 1)

    @torch.no_grad()
    def export(self, model):
        tensors = dict(model.state_dict())
        for size in BRUSH_SIZES:
            images = self.load_style_images(next(model.parameters()).device, size)
            pairs = [model.style_statistics(s) for s in images]
            tensors[f"style_stats1.{size}"] = torch.cat([p[0] for p in pairs])
            tensors[f"style_stats2.{size}"] = torch.cat([p[1] for p in pairs])
        meta = {"arch": "msgnet", "config": json.dumps(model.config()), "styles": json.dumps(self.style_names()),
                "brush_sizes": json.dumps(list(BRUSH_SIZES))}
        return half(tensors, self.storage), meta
