"""Linear Style Transfer (Li, Liu, Kautz & Yang, CVPR 2019, sec. 3-4): the transformation module at relu3_1 (bundled
normalised VGG19) or relu4_1 (VGG16, the artistic model's level) is trained between the frozen encoder and decoder,
each content image with a style drawn at random (randomly
scaled and cropped, as the paper's style augmentation), on the decoded output's content and style losses.
Deviations: the losses are read on the project's VGG16 loss network (relative content loss at relu4_3, relative Gram
loss at relu1_2..relu4_3) instead of the paper's VGG19 (content at r41, mean + covariance at r11..r41); CPU crop size,
step count and learning rate; cosine learning-rate decay; the file is stored in float16; at relu4_1 the module is trained
through the style-trained AdaIN decoder (adain_vgg16_r41_decoder, the default there; paper: the reconstruction decoder),
which the method then reads from its file: the same run through the CPU-trained reconstruction decoder (vgg16_r41_decoder, 18 dB)
came out murky and blurred, worse in both style and content on the tuning set (docs/benchmarks/measurements.md)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..io.image import fixed_crops
from ..nets.lst import PAPER_MATRIX, LinearTransform
from ..nets.pretrained import DECODER_WEIGHTS, ENCODER_WEIGHTS, VGG16_WEIGHTS, encoder_family, level_encoders, vgg_decoder
from ..nets.vgg16_encoder import CHANNELS, MEAN_ACTIVATION
from .data import (
    check_zoom,
    held_out_hp,
    load_styles,
    random_style_crop,
    style_dir_hp,
    style_zoom_hp,
    training_style_paths,
)
from .losses import LossNetwork, content_loss, gram_style_loss
from .perceptual import STYLE_LAYERS, half, pick_styles
from .recipe import Recipe, hp, register_recipe

LEVELS = ("relu3_1", "relu4_1")
# Where the project trains through another decoder than the level's reconstruction one (measured: the docstring).
TRAINING_DECODERS = {"relu4_1": "adain_vgg16_r41_decoder"}
# The level's unit, which the transform's covariance branches divide by (core/nets/lst.py): the normalised VGG19's
# relu3_1 already averages ~0.9, VGG16's relu4_1 ~150.
FEATURE_SCALE = {"relu3_1": 1.0, "relu4_1": MEAN_ACTIVATION["relu4_1"]}
PCA_PHOTOS = 16   # content photos whose features set the initial compress/unzip


@register_recipe
@dataclass
class LSTRecipe(Recipe):
    name = "lst"
    method = "lst"
    summary = "Linear Style Transfer (Li et al. 2019) transformation module at relu3_1 or relu4_1, any style"

    style_dir: str = style_dir_hp()
    held_out: tuple[str, ...] = held_out_hp()   # lst_r31 was trained holding out only two of them (its metadata)
    batch: int = hp(4, paper="8", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-3, paper="1e-4", help="Adam learning rate (higher for short CPU runs)", minimum=0)
    matrix: int = hp(PAPER_MATRIX, "paper", help="size of the transformation matrix (compressed channels)", minimum=1)
    content_layer: str = hp("relu4_3", paper="VGG19 relu4_1", help="VGG16 layer of the content loss")
    style_layers: tuple[str, ...] = hp(STYLE_LAYERS, paper="VGG19 relu1_1..relu4_1",
                                       help="VGG16 layers of the Gram style loss")
    content_weight: float = hp(1.0, "paper", help="weight of the relative content loss", minimum=0)
    style_weight: float = hp(5.0, paper="0.02 on unnormalised mean + covariance losses",
                             help="weight of the relative Gram style loss (mean over layers)", minimum=0)
    style_size: int = hp(512, help="longer side the style images are loaded at, before scaling and cropping",
                         minimum=16)
    style_zoom: tuple[float, ...] = style_zoom_hp(paper="resized to 300 px, cropped to 256")
    init: str = hp("pca", paper="PyTorch's default", help="pca: T starts near the identity on the content features' "
                   "32 principal directions (LinearTransform.start_near_identity); paper: the default initialisation",
                   choices=("pca", "paper"))
    storage: str = hp("float16", help="dtype of the saved file", choices=("float16", "float32"))
    encoder: str = hp(ENCODER_WEIGHTS, help="frozen encoder weights (manifest name or file)", cli=False)
    level: str = hp("relu3_1", paper="relu3_1 (r31 model) or relu4_1 (the artistic r41 model)",
                    help="encoder level: relu3_1 of the bundled VGG19 or relu4_1 of VGG16", choices=LEVELS)
    decoder: str = hp("", paper="the level's reconstruction decoder",
                      help="frozen decoder weights (manifest name or file); default: relu3_1's reconstruction "
                      f"decoder, at relu4_1 the style-trained {TRAINING_DECODERS['relu4_1']} (it renders the texture "
                      "and colour the CPU-trained reconstruction decoder blurs)")
    vgg16: str = hp(VGG16_WEIGHTS, help="VGG16 weights for relu4_1 (manifest name or file)", cli=False)

    def check(self) -> None:
        super().check()
        check_zoom(self.style_zoom)

    def style_paths(self) -> list[Path]:
        return training_style_paths(self.style, self.style_dir, self.held_out)

    def decoder_name(self) -> str:
        return self.decoder or TRAINING_DECODERS.get(self.level, DECODER_WEIGHTS[self.level])

    def build_model(self) -> LinearTransform:
        torch.manual_seed(self.seed)
        return LinearTransform(CHANNELS[self.level], self.matrix, FEATURE_SCALE[self.level])

    def setup(self, device: torch.device) -> None:
        self.device = device
        encoders = level_encoders((self.level,), self.encoder, self.vgg16)
        self.encoder_net = encoders[encoder_family(self.level)].to(device)
        self.decoder_net = vgg_decoder(self.level, self.decoder_name()).to(device)
        self.loss_net = LossNetwork(self.style_layers, self.content_layer).to(device)
        self.paths = self.style_paths()
        self.styles = [s.to(device) for s in load_styles(self.paths, self.style_size)]

    @torch.no_grad()
    def prepare_model(self, model: LinearTransform) -> None:
        if self.init == "paper":
            return
        # Principal directions of centred relu3_1 features of the content folder's first photos (fixed centre crops).
        feats = self.encoder_net(fixed_crops(self.photos(), self.size, PCA_PHOTOS).to(self.device))[self.level]
        x = (feats - feats.mean((2, 3), keepdim=True)).transpose(0, 1).flatten(1).double()
        _, vectors = torch.linalg.eigh(x @ x.t() / x.shape[1])
        model.start_near_identity(vectors[:, -self.matrix:].flip(1).to(feats.dtype))

    def style_crop(self, style: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return random_style_crop(style, self.size, self.style_zoom, rng)

    def losses(self, model, content, step, rng):
        indices = pick_styles(rng, len(self.styles), self.batch, content.shape[0], per_image=True)
        style = torch.cat([self.style_crop(self.styles[i], rng) for i in indices])
        with torch.no_grad():   # everything but the transformation module is frozen
            fc = self.encoder_net(content)[self.level]
            fs = self.encoder_net(style)[self.level]
            target = self.loss_net.vgg(content, (self.content_layer,))[self.content_layer]
            grams = self.loss_net.style_grams(style)   # per image: each output against its own style
        output = self.decoder_net(model(fc, fs))
        feats = self.loss_net(output)
        layers = {name: 1.0 / len(self.style_layers) for name in self.style_layers}
        terms = {"content": self.content_weight * content_loss(feats[self.content_layer], target),
                 "style": self.style_weight * gram_style_loss(feats, grams, layers)}
        terms["total"] = terms["content"] + terms["style"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        # Preview image i shows training style i (whole style image at --style-size).
        fc = self.encoder_net(content)[self.level]
        out = [model(fc[i:i + 1], self.encoder_net(self.styles[i % len(self.styles)])[self.level])
               for i in range(content.shape[0])]
        return self.decoder_net(torch.cat(out)).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "lst_transform", "config": json.dumps(model.config()), "level": self.level,
                "encoder": self.vgg16 if self.level == "relu4_1" else self.encoder, "decoder": self.decoder_name(),
                "loss_network": VGG16_WEIGHTS,
                "styles": json.dumps([p.stem for p in self.style_paths()]),
                "held_out": json.dumps([] if self.style else list(self.held_out))}
        return half(model.state_dict(), self.storage), meta
