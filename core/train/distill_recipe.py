"""Collaborative Distillation (Wang, Li, Wang, Yang & Wang, CVPR 2020) for the fast arbitrary-style path: a slim
VGG16-shaped student encoder (core/nets/student_encoder.py) learns the teacher's relu1_1..relu4_1 features through a
linear embedding per tap (the paper's embedding loss), while the frozen teacher decoder must rebuild the photo from the
student's embedded relu4_1 features (the collaborative loss: the decoder that will read them judges them).
Deviations: the student keeps the embedding at inference and pairs with the teacher's decoder (or a slim one trained
afterwards on them); both terms divided by their target's energy; CPU recipe, started from VGG16 pruned into the
student with layer-wise reconstruction (--start-from teacher, core/nets/prune.py; the paper starts from random).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nets.pretrained import DECODER_WEIGHTS, VGG16_WEIGHTS, vgg16_encoder, vgg_decoder
from ..nets.student_encoder import TAPS, StudentEncoder, start_from_teacher
from .data import fixed_crops
from .recipe import Recipe, hp, register_recipe

PRUNED = "teacher"
PRUNE_PHOTOS = 64   # content crops the pruned start is fitted on (32 left the relu4_1 error 4% higher)


@register_recipe
@dataclass
class DistillRecipe(Recipe):
    name = "distill"
    method = "adain"
    summary = "slim student encoder distilled from VGG16 relu4_1 (Collaborative Distillation, Wang et al. 2020)"

    size: int = hp(128, paper="256", help="training crop size in px", minimum=16)
    batch: int = hp(8, paper="16", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-4, "paper", help="Adam learning rate", minimum=0)
    width: float = hp(0.25, paper="about 0.25 (the VGG19 student's channels)", help="the student's channel scale",
                      minimum=0.05)
    collaborative_weight: float = hp(1.0, help="weight of the teacher decoder's pixel loss on the student's "
                                     "relu4_1 features", minimum=0)
    decoder: str = hp(DECODER_WEIGHTS["relu4_1"], help="the frozen teacher decoder at relu4_1 (manifest name or "
                      "file): the reconstruction decoder, whose pixel loss the paper's collaborative term is")
    start_from: str = hp(PRUNED, paper="random", help="'teacher': VGG16 pruned into the student by layer-wise "
                         "reconstruction on content crops (much closer than random after a CPU run); 'none': random",
                         choices=(PRUNED, "none"))
    vgg16: str = hp(VGG16_WEIGHTS, help="teacher VGG16 weights (manifest name or file)", cli=False)

    def build_model(self) -> StudentEncoder:
        torch.manual_seed(self.seed)
        return StudentEncoder(self.width)

    def setup(self, device: torch.device) -> None:
        self.teacher = vgg16_encoder("relu4_1", self.vgg16).to(device)
        self.decoder_net = vgg_decoder("relu4_1", self.decoder).to(device)

    def prepare_model(self, model: StudentEncoder) -> None:
        if self.start_from == PRUNED:
            crops = fixed_crops(self.content_dir, self.size, PRUNE_PHOTOS).to(next(model.parameters()).device)
            start_from_teacher(model, self.teacher, crops)

    def losses(self, model, content, step, rng):
        with torch.no_grad():
            target = self.teacher(content, TAPS)
        student = model(content, TAPS)
        embedding = sum(F.mse_loss(student[t], target[t]) / target[t].pow(2).mean().clamp_min(1e-8)
                        for t in TAPS) / len(TAPS)
        rebuilt = self.decoder_net(student["relu4_1"])
        terms = {"embedding": embedding,
                 "collaborative": self.collaborative_weight * F.mse_loss(rebuilt, content)}
        terms["total"] = terms["embedding"] + terms["collaborative"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        return self.decoder_net(model(content, ("relu4_1",))["relu4_1"]).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "student_encoder", "config": json.dumps(model.config()), "teacher": self.vgg16,
                "decoder": self.decoder, "source": "trained by Brushstream (core/train/distill_recipe.py)"}
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta
