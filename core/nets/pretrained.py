"""Builders that assemble a network and load its verified weights (torchvision's `weights=` idea).

Each builder takes a manifest name or a file path and nothing else; core.weights does the finding
and verifying, so a tampered or missing file fails here with one clear line.
"""
from __future__ import annotations

import functools

import torch

from .. import weights as weight_store
from ..errors import BrushstreamError
from .vgg16 import VGG16Features
from .vgg_normalised import NormalisedVGGEncoder, VGGDecoder

ENCODER_WEIGHTS = "vgg19_normalised_r31_encoder"
DECODER_WEIGHTS = {
    "relu3_1": "vgg19_normalised_r31_decoder",
    "relu2_1": "vgg19_normalised_r21_decoder",
    "relu1_1": "vgg19_normalised_r11_decoder",
}
VGG16_WEIGHTS = "vgg16_imagenet_caffe"


def _load_into(module: torch.nn.Module, source: str) -> torch.nn.Module:
    tensors, _ = weight_store.load_state_dict(source)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    wrong = sorted(k for k in expected if k in tensors and tensors[k].shape != expected[k].shape)
    if missing or wrong:
        raise BrushstreamError(
            f"{source}: does not fit {type(module).__name__} (missing {missing[:3]}, wrong shape {wrong[:3]})")
    module.load_state_dict({k: tensors[k] for k in expected})
    return module.eval().requires_grad_(False)


@functools.lru_cache(maxsize=8)
def _cached(kind: str, source: str, level: str) -> torch.nn.Module:
    if kind == "encoder":
        return _load_into(NormalisedVGGEncoder("relu3_1"), source)
    if kind == "decoder":
        return _load_into(VGGDecoder(level), source)
    return _load_into(VGG16Features(), source)


def normalised_vgg_encoder(weights: str = ENCODER_WEIGHTS) -> NormalisedVGGEncoder:
    """The relu3_1 VGG19 encoder (frozen). Shared between methods: never train it in place."""
    return _cached("encoder", str(weights), "relu3_1")


def vgg_decoder(level: str = "relu3_1", weights: str | None = None) -> VGGDecoder:
    if level not in DECODER_WEIGHTS:
        raise BrushstreamError(f"no decoder for {level!r}; levels: {', '.join(DECODER_WEIGHTS)}")
    return _cached("decoder", str(weights or DECODER_WEIGHTS[level]), level)


def vgg16_features(weights: str = VGG16_WEIGHTS) -> VGG16Features:
    """VGG16 ImageNet convolution base, Caffe convention handled inside (see vgg16.py)."""
    return _cached("vgg16", str(weights), "")
