"""Collaborative Distillation (Wang, Li, Wang, Yang & Wang, CVPR 2020) for the fast arbitrary-style path: a slim
VGG-shaped student encoder (core/nets/student_encoder.py) learns the teacher's features (VGG16 relu1_1..relu4_1, or
--teacher vgg19n: the bundled normalised VGG19's relu1_1..relu3_1) through a linear embedding per tap (the paper's
embedding loss), while the frozen teacher decoder must rebuild the photo from the student's embedded deepest features
(the collaborative loss: the decoder that will read them judges them).
Deviations: the student keeps the embedding at inference and pairs with the teacher's decoder (or a slim one trained
afterwards on them); both terms divided by their target's energy; CPU recipe, started from VGG16 pruned into the
student with layer-wise reconstruction (--start-from teacher, core/nets/prune.py; the paper starts from random).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..io.image import fixed_crops
from ..nets.pretrained import DECODER_WEIGHTS, ENCODER_WEIGHTS, VGG16_WEIGHTS, normalised_vgg_encoder, vgg16_encoder, vgg_decoder
from ..nets.student_encoder import TEACHER_TAPS, TEACHERS, StudentEncoder, start_from_teacher
from .recipe import Recipe, hp, register_recipe

PRUNED = "teacher"
PRUNE_PHOTOS = 64   # content crops the pruned start is fitted on (32 left the relu4_1 error 4% higher)


@register_recipe
@dataclass
class DistillRecipe(Recipe):
    name = "distill"
    method = "adain"
    summary = ("slim student encoder distilled from VGG16 relu4_1 or the normalised VGG19 relu3_1 (Collaborative "
               "Distillation, Wang et al. 2020)")

    size: int = hp(128, paper="256", help="training crop size in px", minimum=16)
    batch: int = hp(8, paper="16", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-4, "paper", help="Adam learning rate", minimum=0)
    width: float = hp(0.25, paper="about 0.25 (the VGG19 student's channels)", help="the student's channel scale",
                      minimum=0.05)
    teacher: str = hp("vgg16", help="the network distilled: vgg16 (ImageNet, to relu4_1, the fast path's) or vgg19n "
                      "(the bundled normalised VGG19, to relu3_1, the light level's)", choices=TEACHERS)
    collaborative_weight: float = hp(1.0, help="weight of the teacher decoder's pixel loss on the student's "
                                     "deepest features", minimum=0)
    decoder: str = hp("auto", help="the frozen teacher decoder at the deepest tap (manifest name or file): the "
                      "reconstruction decoder, whose pixel loss the paper's collaborative term is; auto: "
                      f"{DECODER_WEIGHTS['relu4_1']} (vgg16) or {DECODER_WEIGHTS['relu3_1']} (vgg19n)")
    start_from: str = hp(PRUNED, paper="random", help="'teacher': VGG16 pruned into the student by layer-wise "
                         "reconstruction on content crops (much closer than random after a CPU run); 'none': random",
                         choices=(PRUNED, "none"))
    vgg16: str = hp(VGG16_WEIGHTS, help="teacher VGG16 weights (manifest name or file)", cli=False)
    vgg19n: str = hp(ENCODER_WEIGHTS, help="teacher normalised VGG19 weights (manifest name or file)", cli=False)

    @property
    def taps(self) -> tuple[str, ...]:
        return TEACHER_TAPS[self.teacher]

    def build_model(self) -> StudentEncoder:
        torch.manual_seed(self.seed)
        return StudentEncoder(self.width, teacher=self.teacher)

    def setup(self, device: torch.device) -> None:
        deepest = self.taps[-1]
        self.teacher_net = (vgg16_encoder(deepest, self.vgg16) if self.teacher == "vgg16"
                            else normalised_vgg_encoder(self.vgg19n)).to(device)
        decoder = DECODER_WEIGHTS[deepest] if self.decoder == "auto" else self.decoder
        self.decoder_net = vgg_decoder(deepest, decoder).to(device)

    def prepare_model(self, model: StudentEncoder) -> None:
        if self.start_from == PRUNED:
            crops = fixed_crops(self.photos(), self.size, PRUNE_PHOTOS).to(next(model.parameters()).device)
            start_from_teacher(model, self.teacher_net, crops)

    def losses(self, model, content, step, rng):
        with torch.no_grad():
            target = self.teacher_net(content, self.taps)
        student = model(content, self.taps)
        embedding = sum(F.mse_loss(student[t], target[t]) / target[t].pow(2).mean().clamp_min(1e-8)
                        for t in self.taps) / len(self.taps)
        rebuilt = self.decoder_net(student[self.taps[-1]])
        terms = {"embedding": embedding,
                 "collaborative": self.collaborative_weight * F.mse_loss(rebuilt, content)}
        terms["total"] = terms["embedding"] + terms["collaborative"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        return self.decoder_net(model(content, self.taps[-1:])[self.taps[-1]]).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "student_encoder", "config": json.dumps(model.config()),
                "teacher": self.vgg16 if self.teacher == "vgg16" else self.vgg19n,
                "decoder": DECODER_WEIGHTS[self.taps[-1]] if self.decoder == "auto" else self.decoder,
                "source": "trained by Brushstream (core/train/distill_recipe.py)"}
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta
