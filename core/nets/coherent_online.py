"""Chen, Liao, Yuan, Yu & Hua, "Coherent Online Video Style Transfer", ICCV 2017: the feature-level composite.

A trained image stylization network is split into an encoder and a decoder (:class:`EncoderDecoder`: any pair of
callables; :func:`johnson_split` for our Johnson transform nets). For frame t the encoder gives F_t; the previous
frame's *composite* features F^o_{t-1} (what the decoder got, so short-term coherence carries on to the long term)
are warped to t by the flow, area-downsampled to the feature grid and divided by the stride; a small mask network
predicts the traceable mask M from how the warped features differ from F_t, and
F^o_t = M * warp(F^o_{t-1}) + (1 - M) * F_t goes to the decoder (:func:`coherent_step`).

Deviation, the mask network's input (paper beside ours):
- paper: the raw feature difference warp(F^o_{t-1}) - F_t (all channels of the stylization network), so each
  stylization network needs its own trained mask network;
- ours: three channels that do not depend on the network's channel count or feature scale: the mean and the max
  over channels of |warp(F^o_{t-1}) - F_t| / sigma_c (sigma_c: the per-channel std of F_t over the frame, plus
  eps) and the photometric difference mean_c |warp(I_{t-1}) - I_t| / sigma_c(I_t) area-pooled to the feature grid
  (in the same units: a frame's own contrast, so dark and bright clips read alike). One trained
  mask network (conv3x3 3->16, ReLU, conv3x3 16->16, ReLU, conv3x3 16->1, sigmoid; the paper's is also a few
  convolutions) then serves every Johnson model.
Addition: M is zeroed where the downsampled flow leaves the frame (nothing there can be traced; the warp would
only repeat the border).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.warp import backward_warp, inside_frame
from .johnson import STRIDE as JOHNSON_STRIDE
from .johnson import TransformNet

ARCH = "coherent_mask"
SIGMA_EPS = 1e-3        # added to the per-channel std of F_t (features of flat frames have none)
INPUTS = 3              # mean and max normalised feature difference, photometric difference
# TransformNet.body: three down-sampling convolutions (9x9, then two stride-2 3x3) reach the 1/4-resolution map the
# residual blocks work on. Encoder = those three, decoder = everything after them.
JOHNSON_ENCODER_LAYERS = 3


@dataclass(frozen=True)
class EncoderDecoder:
    """A stylization network in two halves: ``decode(encode(x))`` is its output, ``encode(x)`` is at 1/``stride``."""
    encode: Callable[[torch.Tensor], torch.Tensor]
    decode: Callable[[torch.Tensor], torch.Tensor]
    stride: int


def johnson_split(net: TransformNet) -> EncoderDecoder:
    """``net`` split before its residual blocks; the halves share its modules, so the output is unchanged."""
    return EncoderDecoder(net.body[:JOHNSON_ENCODER_LAYERS], net.body[JOHNSON_ENCODER_LAYERS:], JOHNSON_STRIDE)


class MaskNet(nn.Module):
    """(B, 3, h, w) difference channels (:func:`mask_inputs`) -> traceable mask (B, 1, h, w) in [0, 1]."""

    def __init__(self, hidden: int = 16, trust: float = 2.0):
        super().__init__()
        self.hidden = hidden
        self.body = nn.Sequential(
            nn.Conv2d(INPUTS, hidden, 3, padding=1, padding_mode="replicate"), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1, padding_mode="replicate"), nn.ReLU(),
            nn.Conv2d(hidden, 1, 3, padding=1, padding_mode="replicate"), nn.Sigmoid())
        with torch.no_grad():   # a new network starts trusting the flow (M ~ 0.88): most pixels of a video are traceable
            self.body[-2].bias.fill_(trust)

    def config(self) -> dict:
        return {"arch": ARCH, "hidden": self.hidden}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def feature_flow(flow: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """Pixel flow (B, 2, H, W) on a feature grid ``size`` (h, w): area pooling, vectors divided by the stride."""
    return F.adaptive_avg_pool2d(flow, size) / stride


def normalised_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| / sigma_c, sigma_c: the per-channel std of ``b`` over the frame plus SIGMA_EPS (float32)."""
    sigma = b.float().std(dim=(2, 3), keepdim=True) + SIGMA_EPS
    return (a.float() - b.float()).abs() / sigma


def mask_inputs(warped: torch.Tensor, features: torch.Tensor, photometric: torch.Tensor) -> torch.Tensor:
    """The mask network's channel-agnostic input: mean and max over channels of |warped - features| / sigma_c, and
    the photometric difference (B, 1, h, w)."""
    diff = normalised_difference(warped, features)
    # log1p: a flat frame (tiny sigma) or a cut gives huge ratios, which would saturate the sigmoid in one step.
    return torch.cat((diff.mean(1, keepdim=True), diff.amax(1, keepdim=True), photometric.float()), dim=1).log1p()


def coherent_step(mask_net: Callable[[torch.Tensor], torch.Tensor], features: torch.Tensor, image: torch.Tensor,
                  previous_composite: torch.Tensor, previous_image: torch.Tensor, flow: torch.Tensor, stride: int,
                  traceable: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame's composite features F^o_t and its mask M (both at the feature grid).

    ``features``: F_t = encode(``image``); ``previous_composite``: F^o_{t-1}, of ``previous_image``; ``flow``: from
    the current frame back to the previous one, in pixels at the image's size. ``traceable`` scales M (0: F_t).
    """
    size = tuple(features.shape[-2:])
    small = feature_flow(flow.float(), size, stride)
    warped = backward_warp(previous_composite.float(), small)
    photometric = normalised_difference(backward_warp(previous_image.float(), flow.float()), image).mean(1, keepdim=True)
    m = mask_net(mask_inputs(warped, features, F.adaptive_avg_pool2d(photometric, size)))
    m = traceable * m * inside_frame(small).to(m.dtype)
    composite = m * warped + (1 - m) * features
    return composite.to(features.dtype), m
