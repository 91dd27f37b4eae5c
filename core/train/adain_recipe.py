"""AdaIN decoder training (Huang & Belongie 2017, section 6.1): the decoder g inverts relu4_1 AdaIN targets
t = AdaIN(f(c), f(s)) of the frozen encoder f, trained on L = ||f(g(t)) - t||^2 + lambda sum_i (||mu(phi_i(g(t))) -
mu(phi_i(s))||^2 + ||sigma(phi_i(g(t))) - sigma(phi_i(s))||^2) over relu1_1..relu4_1 (eq. 11-13), MSE as in the
authors' code, content photos x style images with random crops and scales of the styles, some styles held out.
Deviations: the VGG16 ImageNet encoder instead of the normalised VGG19 (the backbone the project has), with each
tap's features divided by its mean activation on the content photos, so the layers weigh in the loss as in the
paper's normalised network (unscaled, relu3_1 would outweigh relu1_1 by 10^2 in the squared terms); CPU recipe
(128 px crops, thousands of steps instead of 160k, the relu3_1 half started from the bundled relu3_1 decoder); style
statistics come from a fixed bank of augmented crops per style computed once per run (--style-bank; 0 = a fresh crop
each step, the paper's).
--level relu3_1 (the light option): the decoder reads relu3_1 AdaIN targets of the bundled normalised VGG19 and the
content loss is measured there (its own unit); the style loss stays on VGG16 relu1_1..relu4_1 (that network stops at
relu3_1, and the paper's style loss reaches relu4_1); started from the bundled relu3_1 reconstruction decoder.
The fast path (--encoder STUDENT): the decoder reads a distilled student's embedded features at the level (its AdaIN
target made from the student's content and style statistics, as at inference) while the losses still use the full
networks, as Collaborative Distillation trains its student decoder; a slim decoder (--width below 1) starts from a full
decoder of the level pruned into it by layer-wise reconstruction (core/nets/prune.py; the paper's is random).
--imitate DECODER adds output distillation (not in either paper): the stylized image of a full pair (that decoder and
its level's full encoder, at either level) for the same photo and style crops is a dense target, and the fast pair's
loss-network features are pulled towards it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..hub.weights import load_manifest
from ..io.image import fixed_crops
from ..nets.pretrained import (
    DECODER_WEIGHTS,
    ENCODER_WEIGHTS,
    VGG16_WEIGHTS,
    decoder_level,
    normalised_vgg_encoder,
    trained_network,
    vgg16_encoder,
    vgg_decoder,
)
from ..nets.student_encoder import LEVEL_TEACHER
from ..nets.vgg_decoder import VGGDecoder, start_from_wide
from ..ops.adain import adain
from ..ops.stats import mean_std
from .data import (
    UNSEEN_STYLES,
    check_zoom,
    held_out_hp,
    load_styles,
    random_style_crop,
    style_dir_hp,
    style_zoom_hp,
    training_style_paths,
)
from .decoder_recipe import copy_shared_layers
from .perceptual import pick_styles
from .recipe import Recipe, hp, register_recipe

LEVEL = "relu4_1"   # the paper's level
STYLE_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
LEVELS = (LEVEL, "relu3_1")   # relu3_1: the bundled normalised VGG19's, the light option
SCALE_PHOTOS = 16   # content photos whose mean activations set each tap's unit
HELD_OUT = UNSEEN_STYLES   # the shipped decoders were trained holding out the first five (their metadata says)
# The full decoder a slim one is pruned from, per level.
PRUNE_SOURCE = {"relu4_1": "adain_vgg16_r41_decoder", "relu3_1": "adain_vgg19n_r31_decoder"}
PRUNE_PHOTOS = 64   # content crops a slim decoder's pruned start is fitted on
TEACHER = "vgg16"   # --encoder's value when the decoder reads the loss network's own features
INPUT = "input"     # key of the statistics the AdaIN target is made from (the input encoder's relu4_1)
FULL = "full"       # key of the imitated full pair's encoder statistics (its AdaIN target)


@register_recipe
@dataclass
class AdaINRecipe(Recipe):
    name = "adain"
    method = "adain"
    summary = ("AdaIN (Huang & Belongie 2017) decoder trained with the style loss, any style: VGG16 relu4_1 (--level "
               "relu3_1: the bundled normalised VGG19's)")

    style_dir: str = style_dir_hp()
    held_out: tuple[str, ...] = held_out_hp()
    size: int = hp(128, paper="256", help="training crop size in px (content and style)", minimum=16)
    batch: int = hp(8, "paper", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-4, "paper", help="Adam learning rate", minimum=0)
    style_weight: float = hp(10.0, "paper", help="lambda, the weight of the mean/std style loss", minimum=0)
    style_size: int = hp(512, paper="512 then 256 crops", help="longer side the style images are loaded at",
                         minimum=16)
    style_zoom: tuple[float, ...] = style_zoom_hp()
    style_bank: int = hp(8, paper="0", help="augmented crops per style whose statistics are computed once per run "
                         "(0: a new crop every step)", minimum=0)
    width: float = hp(1.0, "paper", help="hidden channel scale of the decoder (below 1: a slim student)",
                      minimum=0.05)
    start_from: str = hp(DECODER_WEIGHTS["relu3_1"], paper="random", help="decoder whose shared layers start this "
                         "one (the bundled relu3_1 reconstruction decoder gives a relu4_1 decoder conv7..conv11 and "
                         "a relu3_1 one all; a trained relu4_1 decoder gives all; with --width below 1, a full relu4_1 "
                         "decoder pruned into the slim one); 'none' for random")
    encoder: str = hp(TEACHER, paper="vgg16", help="encoder whose relu4_1 features the decoder reads: vgg16, or a "
                      "student encoder (brushstream train distill; manifest name or file) for the fast path, the "
                      "losses still measured with VGG16")
    imitate: str = hp("none", help="fast path: a full AdaIN decoder of either level (e.g. adain_vgg19n_r31_decoder) "
                      "whose stylized output, with its level's full encoder, the fast pair also learns to reproduce "
                      "(loss network features, every style tap); none: the paper's losses only")
    imitation_weight: float = hp(1.0, help="weight of the --imitate term", minimum=0)
    level: str = hp(LEVEL, "paper", help="the level the decoder inverts: relu4_1 of VGG16, or relu3_1 of the bundled "
                    "normalised VGG19 (the light option; content loss there, style loss still on VGG16)",
                    choices=LEVELS)
    vgg16: str = hp(VGG16_WEIGHTS, help="VGG16 weights (manifest name or file)", cli=False)
    vgg19n: str = hp(ENCODER_WEIGHTS, help="normalised VGG19 weights for --level relu3_1", cli=False)

    def check(self) -> None:
        super().check()
        check_zoom(self.style_zoom)
        if self.level == LEVEL and self.width < 1 and self.start_from == DECODER_WEIGHTS["relu3_1"]:
            raise BrushstreamError(f"--start-from: a slim decoder (--width below 1) starts from a full relu4_1 decoder "
                                   f"pruned into it, e.g. --start-from {PRUNE_SOURCE[LEVEL]} (or none: random); "
                                   f"{self.start_from} decodes relu3_1")

    def build_model(self) -> VGGDecoder:
        torch.manual_seed(self.seed)
        decoder = VGGDecoder(self.level, self.width)
        if self.start_from != "none" and self.width == 1:
            copy_shared_layers(decoder, self.start_from)
        return decoder.requires_grad_(True)

    def setup(self, device: torch.device) -> None:
        self.device = device
        self.loss_net = vgg16_encoder(LEVEL, self.vgg16).to(device)   # the style loss's network (and relu4_1's)
        # The network whose level the AdaIN target lives in; the content loss is measured there.
        self.content_net = self.loss_net if self.level == LEVEL else normalised_vgg_encoder(self.vgg19n).to(device)
        self.student = None if self.encoder == TEACHER else \
            trained_network(self.encoder, "student_encoder")[0].to(device)
        wanted = LEVEL_TEACHER[self.level]   # the network whose level the student stands in for
        if self.student is not None and self.student.teacher != wanted:
            raise BrushstreamError(f"--encoder {self.encoder}: a student of {self.student.teacher} has no {self.level} "
                                   f"of the level's encoder; distil one with brushstream train distill --teacher "
                                   f"{wanted}")
        self.paths = training_style_paths(self.style, self.style_dir, self.held_out)
        self.styles = [s.to(device) for s in load_styles(self.paths, self.style_size)]
        self.scale = self._tap_scales()
        self.unit = self.scale[LEVEL] if self.level == LEVEL else 1.0   # the normalised VGG19 is in its own unit
        self.imitated = None
        if self.imitate != "none":
            if self.student is None:
                raise BrushstreamError("--imitate: output distillation trains a fast-path decoder; give --encoder "
                                       "STUDENT")
            self.imitated_level = decoder_level(self.imitate, self.level)
            self.imitated = vgg_decoder(self.imitated_level, self.imitate).to(device)
            # The level's full encoder: the loss network at relu4_1; at relu3_1 the recipe's own VGG19 when it has one.
            if self.imitated_level == LEVEL:
                self.imitated_encoder, self.imitated_unit = self.loss_net, self.scale[LEVEL]
            else:
                self.imitated_encoder, self.imitated_unit = (self.content_net if self.level != LEVEL else
                                                             normalised_vgg_encoder(self.vgg19n).to(device)), 1.0
        self.bank = self._style_bank() if self.style_bank else None

    @torch.no_grad()
    def _tap_scales(self) -> dict[str, float]:
        """Mean activation of each VGG16 tap on fixed crops of the first content photos (the normalised VGG's unit)."""
        feats = self.loss_net(fixed_crops(self.photos(), self.size, SCALE_PHOTOS).to(self.device), STYLE_TAPS)
        return {t: float(feats[t].mean()) for t in STYLE_TAPS}

    def prepare_model(self, model: VGGDecoder) -> None:
        if self.start_from != "none" and self.width < 1:   # a slim decoder: pruned from a full relu4_1 one
            self._prune_start(model)

    @torch.no_grad()
    def _prune_start(self, model: VGGDecoder) -> None:
        """Fit the slim decoder, layer by layer, to the full decoder's activations on AdaIN targets of content crops
        (each with one training style): the full decoder reads the level's full encoder's targets, the slim one its
        input encoder's (a student's, on the fast path)."""
        wide = vgg_decoder(self.level, self.start_from).to(self.device)
        crops = fixed_crops(self.photos(), self.size, PRUNE_PHOTOS).to(self.device)

        def full(images):
            return self.content_net(images, (self.level,))[self.level]

        wide_stats = [mean_std(full(style)) for style in self.styles]
        slim_stats = [mean_std(self._input_features(style)) for style in self.styles]
        wide_in, slim_in = [], []
        for i, crop in enumerate(crops.split(1)):
            wide_in.append(adain(full(crop), *wide_stats[i % len(self.styles)]))
            slim_in.append(adain(self._input_features(crop), *slim_stats[i % len(self.styles)]))
        start_from_wide(model, wide, torch.cat(wide_in), torch.cat(slim_in))

    def _input_features(self, images: torch.Tensor) -> torch.Tensor:
        """The level's features as the decoder will receive them: the encoder's own, or the student's embedded ones."""
        net = self.content_net if self.student is None else self.student
        return net(images, (self.level,))[self.level]

    def _imitated_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.imitated_encoder(images, (self.imitated_level,))[self.imitated_level]

    @torch.no_grad()
    def _crop_statistics(self, crops: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{tap: (mean, std)} of style crops, each tap in its unit (the normalised scale the loss compares in), and
        under INPUT the statistics of the input encoder's level that the AdaIN target takes (same unit)."""
        feats = self.loss_net(crops, STYLE_TAPS)
        stats = {t: mean_std(feats[t] / self.scale[t]) for t in STYLE_TAPS}
        reads_loss_net = self.student is None and self.content_net is self.loss_net
        stats[INPUT] = stats[LEVEL] if reads_loss_net else mean_std(self._input_features(crops) / self.unit)
        if self.imitated is not None:
            stats[FULL] = mean_std(self._imitated_features(crops) / self.imitated_unit)
        return stats

    def _style_bank(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The statistics of ``style_bank`` seeded random crops of every style: {tap: (mean, std)}, (S, K, C, 1, 1)."""
        rng = torch.Generator().manual_seed(self.seed)
        per_style = [self._crop_statistics(torch.cat([random_style_crop(style, self.size, self.style_zoom, rng)
                                                      for _ in range(self.style_bank)])) for style in self.styles]
        return {t: (torch.stack([s[t][0] for s in per_style]), torch.stack([s[t][1] for s in per_style]))
                for t in per_style[0]}

    def style_targets(self, indices: list[int], rng: torch.Generator) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per image of the batch, the (mean, std) at every tap of one augmented crop of its style."""
        if self.bank is None:
            return self._crop_statistics(torch.cat([random_style_crop(self.styles[i], self.size, self.style_zoom, rng)
                                                    for i in indices]))
        picks = torch.randint(self.style_bank, (len(indices),), generator=rng)
        styles = torch.tensor(indices)
        return {t: (mean[styles, picks], std[styles, picks]) for t, (mean, std) in self.bank.items()}

    def losses(self, model, content, step, rng):
        indices = pick_styles(rng, len(self.styles), self.batch, content.shape[0], per_image=True)
        targets = self.style_targets(indices, rng)
        unit = self.unit
        with torch.no_grad():   # the AdaIN target in the encoder's own scale: the decoder's input at inference
            fc = self._input_features(content)
            t = adain(fc, targets[INPUT][0] * unit, targets[INPUT][1] * unit)
        out = model(t)
        feats = self.loss_net(out, STYLE_TAPS)
        style = 0.0
        for tap in STYLE_TAPS:
            mean, std = mean_std(feats[tap] / self.scale[tap])
            style = style + F.mse_loss(mean, targets[tap][0]) + F.mse_loss(std, targets[tap][1])
        level = feats[LEVEL] if self.content_net is self.loss_net else self.content_net(out, (self.level,))[self.level]
        terms = {"content": F.mse_loss(level / unit, t / unit), "style": self.style_weight * style}
        if self.imitated is not None:
            with torch.no_grad():   # the full pair's output for the same photo and style crops
                full_t = adain(self._imitated_features(content), targets[FULL][0] * self.imitated_unit,
                               targets[FULL][1] * self.imitated_unit)
                reference = self.loss_net(self.imitated(full_t), STYLE_TAPS)
            terms["imitation"] = self.imitation_weight * sum(
                F.mse_loss(feats[tap] / self.scale[tap], reference[tap] / self.scale[tap]) for tap in STYLE_TAPS)
        terms["total"] = sum(terms.values())
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        # Preview image i shows training style i (the whole style image at --style-size).
        fc = self._input_features(content)
        out = []
        for i in range(content.shape[0]):
            fs = self._input_features(self.styles[i % len(self.styles)])
            out.append(adain(fc[i:i + 1], *mean_std(fs)))
        return model(torch.cat(out)).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "vgg_decoder", "level": self.level, "width": str(self.width),
                "encoder": self.vgg16 if self.level == LEVEL else self.vgg19n, "loss_network": self.vgg16,
                "trained_for": "adain", "style_weight": str(self.style_weight),
                "tap_scales": json.dumps({t: round(v, 4) for t, v in self.scale.items()}),
                "styles": json.dumps([p.stem for p in self.paths]),
                "held_out": json.dumps([] if self.style else list(self.held_out)),
                "source": "trained by Brushstream (core/train/adain_recipe.py)"}
        if self.student is not None:   # the AdaIN method pairs this decoder with the student it was trained on:
            # a manifest name, or the file's name, to be found beside the decoder (they are shared as a pair)
            meta["input_encoder"] = self.encoder if self.encoder in load_manifest() else Path(self.encoder).name
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta
