"""Perceptual losses on the VGG16 loss network (Gatys et al. 2016; Johnson et al. 2016) and the temporal hooks.

All feature losses read VGG16 features in its Caffe scale (0-255 inputs), as the published weights expect.
The Gram matrix is normalised by C*H*W (Johnson et al. eq. 3); the style loss is the squared Frobenius
distance of Gram matrices per layer (Johnson eq. 4) summed with per-layer weights; the mean/std variant is
Huang & Belongie's eq. 12 (AdaIN decoder training). Temporal losses follow ReCoNet (Gao et al. 2018, eq. 4-6).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from ..nets.pretrained import vgg16_features
from ..nets.vgg16 import VGG16Features
from ..ops.stats import gram_per_element, mean_std
from ..ops.total_variation import total_variation


def gram(features: torch.Tensor) -> torch.Tensor:
    return gram_per_element(features.float())


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction loss (Johnson eq. 2), relative: ||phi(y) - phi(x)||^2 / ||phi(x)||^2, so the
    weight does not depend on the loss network's scale (the project's Gatys uses the same normalisation)."""
    target = target.float()
    dims = tuple(range(1, target.dim()))   # per image, then the batch mean: a split batch (DDP) averages the same
    return ((features.float() - target).pow(2).sum(dims) / target.pow(2).sum(dims).clamp_min(1e-12)).mean()


def gram_style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
                    layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Johnson eq. 4, relative per layer: sum_l w_l ||G(phi_l(y)) - G_s||_F^2 / ||G_s||_F^2, averaged over the
    batch. Without the division, relu4_3's Grams (VGG16's 0-255 scale) outweigh relu1_2's by orders of
    magnitude, and a network trained for a few hundred steps learns only colour blobs."""
    total = 0.0
    for name, weight in layer_weights.items():
        g = gram(features[name])
        target = target_grams[name].to(g.dtype)
        per_image = (g - target).pow(2).sum((1, 2)) / target.pow(2).sum((1, 2)).clamp_min(1e-12)
        total = total + weight * per_image.mean()
    return total


def meanstd_style_loss(features: Mapping[str, torch.Tensor], targets: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                       layer_weights: Mapping[str, float]) -> torch.Tensor:
    """Sum over layers of w_l * (||mu(phi_l(y)) - mu_s||^2 + ||sigma(phi_l(y)) - sigma_s||^2) (AdaIN eq. 12)."""
    total = 0.0
    for name, weight in layer_weights.items():
        mean, std = mean_std(features[name].float())
        t_mean, t_std = targets[name]
        total = total + weight * (F.mse_loss(mean, t_mean.expand_as(mean)) + F.mse_loss(std, t_std.expand_as(std)))
    return total


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation as Johnson et al. train with it (sec. 3.3): the squared form, on the 0-1 scale."""
    return total_variation(image, squared=True)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of RGB (B, 3, H, W) -> (B, 1, H, W)."""
    return 0.299 * rgb[:, :1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]


def temporal_output_loss(output: torch.Tensor, warped_previous_output: torch.Tensor, frame: torch.Tensor,
                         warped_previous_frame: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ReCoNet eq. 5: the output's change between frames should follow the input's luminance change where the
    flow is reliable: (1/D) sum M * ||(O_t - W(O_t-1)) - (Y(I_t) - Y(W(I_t-1)))||^2."""
    change = output - warped_previous_output
    expected = luminance(frame) - luminance(warped_previous_frame)
    return (mask * (change - expected).pow(2)).mean()


def temporal_feature_loss(features: torch.Tensor, warped_previous_features: torch.Tensor,
                          mask: torch.Tensor) -> torch.Tensor:
    """ReCoNet eq. 6: (1/D) sum M * ||F_t - W(F_t-1)||^2, with the mask resized to the feature map."""
    m = F.interpolate(mask, size=features.shape[-2:], mode="bilinear", align_corners=False)
    return (m * (features - warped_previous_features).pow(2)).mean()


class LossNetwork(torch.nn.Module):
    """The frozen VGG16 loss network with the style targets of a set of style images computed once."""

    def __init__(self, style_layers: Sequence[str], content_layer: str):
        super().__init__()
        self.vgg: VGG16Features = vgg16_features()
        self.style_layers, self.content_layer = tuple(style_layers), content_layer
        self.taps = tuple(dict.fromkeys([*self.style_layers, content_layer]))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.vgg(images, self.taps)

    @torch.no_grad()
    def style_grams(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.vgg(style, self.style_layers)
        return {name: gram(feats[name]) for name in self.style_layers}

    @torch.no_grad()
    def style_meanstd(self, style: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        feats = self.vgg(style, self.style_layers)
        return {name: mean_std(feats[name]) for name in self.style_layers}
