"""What the three perceptual-loss recipes (Johnson, MSG-Net, MetaNet) share: the loss weights as data, the
VGG16 loss network, per-style Gram targets and the weighted sum of content, style and TV terms."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import BrushstreamError
from ..nets.vgg16 import TAP_INDEX
from .budget import Stage
from .data import load_styles
from .losses import LossNetwork, content_loss, gram_style_loss, tv_loss
from .recipe import Recipe, hp
from .teacher import Teacher

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass
class PerceptualRecipe(Recipe):
    content_layer: str = hp("relu2_2", "paper", help="VGG16 layer of the content loss")
    style_layers: tuple[str, ...] = hp(STYLE_LAYERS, "paper", help="VGG16 layers of the Gram style loss")
    content_weight: float = hp(1.0, help="weight of the relative content loss", minimum=0)
    style_weight: float = hp(5.0, paper="tuned per style, on unnormalised losses",
                             help="weight of the relative Gram style loss (mean over layers), as the project's Gatys",
                             minimum=0)
    tv_weight: float = hp(1.0, paper="1e-6 to 1e-4 on unnormalised losses", help="weight of total variation",
                          minimum=0)
    style_size: int = hp(384, paper="the style image as it is", help="longer side of the style image(s) in px",
                         minimum=16)
    teacher: str = hp("", paper="none (the paper trains on the perceptual loss alone)",
                      help="a registered arbitrary-style method (adain, wct, lst) whose stylized crops the network "
                      "imitates in VGG16 feature space (one-style recipes); empty: no teacher")
    teacher_options: str = hp("", help="the teacher's options as NAME=VALUE,... (e.g. level=relu3_1)")
    teacher_weight: float = hp(1.0, help="weight of the relative feature distance to the teacher's output", minimum=0)
    teacher_layer: str = hp("relu3_3", help="VGG16 layer where the network's output meets the teacher's")
    teacher_cache: bool = hp(True, help="keep the teacher's outputs on disk under BRUSHSTREAM_CACHE, reused by every "
                             "later run with the same seed and crops")
    small_first: float = hp(0.0, paper="0 (one size throughout)", help="share of the run (steps, or time under "
                            "--minutes) trained on crops of half the size first, then the full size", minimum=0)

    def check(self) -> None:
        super().check()
        if self.teacher and self.teacher_layer not in TAP_INDEX:
            raise BrushstreamError(f"--teacher-layer must be a VGG16 layer ({', '.join(TAP_INDEX)}), "
                                   f"got {self.teacher_layer!r}")
        if self.small_first >= 1:
            raise BrushstreamError(f"--small-first must be below 1 (a share of the run), got {self.small_first}")

    def stages(self) -> list[Stage]:
        full = Stage("full size", 1.0 - self.small_first, self.size)
        if not self.small_first:
            return [full]
        return [Stage("small crops", self.small_first, max(32, self.size // 2)), full]

    def style_names(self) -> list[str]:
        return [Path(s).stem for s in self.style]

    def setup_loss_network(self, device: torch.device) -> None:
        taps = tuple(dict.fromkeys([*self.style_layers, *([self.teacher_layer] if self.teacher else [])]))
        self.loss_net = LossNetwork(taps, self.content_layer).to(device)
        self.teacher_net = None
        if self.teacher:
            if len(self.style) != 1:
                raise BrushstreamError(f"--teacher: a teacher stylizes with one style; got {len(self.style)} --style")
            self.teacher_net = Teacher(self.teacher, self.teacher_options, self.style[0], self.style_size,
                                       cache=self.teacher_cache)

    def load_style_images(self, device: torch.device, long_side: int | None = None) -> list[torch.Tensor]:
        return [s.to(device) for s in load_styles(list(self.style), long_side or self.style_size)]

    def perceptual_terms(self, output: torch.Tensor, content: torch.Tensor,
                         target_grams: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        feats = self.loss_net(output)
        with torch.no_grad():
            target = self.loss_net.vgg(content, (self.content_layer,))[self.content_layer]
        terms = {
            "content": self.content_weight * content_loss(feats[self.content_layer], target),
            "style": self.style_weight * gram_style_loss(feats, target_grams,
                                                         {n: 1.0 / len(self.style_layers) for n in self.style_layers}),
            "tv": self.tv_weight * tv_loss(output),
        }
        if getattr(self, "teacher_net", None) is not None:   # feature-level distillation (teacher.py)
            with torch.no_grad():
                taught = self.loss_net.vgg(self.teacher_net.outputs(content), (self.teacher_layer,))
            terms["teacher"] = self.teacher_weight * content_loss(feats[self.teacher_layer], taught[self.teacher_layer])
        terms["total"] = sum(terms.values())
        return terms


def pick_styles(rng: torch.Generator, styles: int, global_batch: int, images: int, per_image: bool) -> list[int]:
    """Style indices for the ``images`` of this process's slice of a step's batch: one style for the whole
    batch, or one per image. Indices are drawn for the global batch, then sliced by rank, so a DDP run trains
    on what one process would."""
    drawn = torch.randint(styles, (global_batch if per_image else 1,), generator=rng).tolist()
    if not per_image:
        return drawn * images
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    return drawn[rank * images:(rank + 1) * images]


def style_per_image_hp():
    return hp(True, paper="one style per batch", help="give every image of a batch its own random style, so each "
              "step contrasts styles instead of averaging them in Adam's moments")


def half(tensors: dict[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """Floating tensors in the file's storage dtype (float16 halves a bundled file; loading casts back)."""
    target = {"float16": torch.float16, "float32": torch.float32}[dtype]
    return {k: v.detach().to(target) if v.is_floating_point() else v.detach() for k, v in tensors.items()}
