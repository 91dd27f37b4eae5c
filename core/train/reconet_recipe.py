"""ReCoNet (Gao et al. 2018, sec. 3.2-3.3): perceptual losses on both frames of a pair, plus the output-level
temporal loss with its luminance term (eq. 5) and the feature-level temporal loss on the encoder output (eq. 6);
flow and occlusion masks are used in training only. Pairs are synthetic motion on the training photos plus
real clip pairs with DIS flow (core/train/motion.py). Deviations: the project's relative perceptual losses
(perceptual.py) with temporal weights tuned to them, the feature loss divided by the features' energy, CPU crop size
and step count, cosine decay, float16 file.
``--temporal-weight 0 --feature-temporal-weight 0`` trains the same network without temporal losses (the
control the video bench compares against)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..nets.reconet import WIDTHS, ReCoNet
from ..ops.warp import backward_warp
from .losses import temporal_feature_loss, temporal_output_loss
from .motion import FramePairs, clip_pair_count, clip_pairs_for, synthetic_pairs
from .perceptual import PerceptualRecipe, half
from .recipe import hp, register_recipe


@register_recipe
@dataclass
class ReCoNetRecipe(PerceptualRecipe):
    name = "reconet"
    method = "reconet"
    summary = "ReCoNet (Gao et al. 2018): one style, temporally coherent video without flow at inference"

    width: str = hp("realtime", help="the paper's network or the real-time one for CPUs", choices=WIDTHS)
    channels: int = hp(0, paper="48 (paper width)", help="channels at 1/4 resolution (paper width: of the first "
                       "layer); 0 takes the width's default", minimum=0)
    residual_blocks: int = hp(4, "paper", help="residual blocks", minimum=0)
    temporal_weight: float = hp(50.0, paper="lambda_o, on unnormalised losses", minimum=0,
                                help="weight of the output-level temporal loss (eq. 5)")
    feature_temporal_weight: float = hp(1.0, paper="lambda_f, on unnormalised losses", minimum=0,
                                        help="weight of the feature-level temporal loss (eq. 6)")
    max_shift: float = hp(6.0, help="largest synthetic translation in px (at the crop size)", minimum=0)
    clip_fraction: float = hp(0.25, help="share of each batch taken from real clip pairs (0: synthetic only)",
                              minimum=0)
    clips: str = hp("", help="folder of .mp4 clips for real pairs (frames from 60 on); without it every pair is "
                    "synthetic")
    storage: str = hp("float16", help="dtype of the saved file", choices=("float16", "float32"))

    def build_model(self) -> ReCoNet:
        torch.manual_seed(self.seed)
        return ReCoNet(self.width, self.channels or None, self.residual_blocks)

    def setup(self, device: torch.device) -> None:
        if len(self.style) != 1:
            raise BrushstreamError(f"a ReCoNet network learns one style; got {len(self.style)} --style images")
        self.setup_loss_network(device)
        self.grams = self.loss_net.style_grams(self.load_style_images(device)[0])
        self.clip_pairs = clip_pairs_for(self.clips, self.clip_fraction)

    def pairs(self, content: torch.Tensor, rng: torch.Generator) -> FramePairs:
        """This batch's frame pairs: synthetic motion on the photos, the last ``clip_fraction`` from real clips."""
        b = content.shape[0]
        real = clip_pair_count(self.clip_pairs, b, self.clip_fraction)
        pairs = synthetic_pairs(content[:b - real], rng, self.max_shift * content.shape[-1] / 128)
        if real:
            pairs = pairs.cat(self.clip_pairs.sample(rng, real, content.shape[-1], content.device))
        return pairs

    def losses(self, model, content, step, rng):
        p = self.pairs(content, rng)
        out_prev, feat_prev = model(p.previous, features=True)
        out_cur, feat_cur = model(p.current, features=True)
        terms = self.perceptual_terms(torch.cat((out_prev, out_cur)), torch.cat((p.previous, p.current)), self.grams)
        terms["temporal"] = self.temporal_weight * temporal_output_loss(
            out_cur, backward_warp(out_prev, p.flow), p.current, backward_warp(p.previous, p.flow), p.mask)
        scale = feat_cur.shape[-1] / p.flow.shape[-1]
        small_flow = F.interpolate(p.flow, size=feat_cur.shape[-2:], mode="bilinear", align_corners=False) * scale
        # Relative to the features' energy: the decoder's first instance norm cancels any scale of the encoder
        # output, so the raw eq. 6 could be lowered by shrinking the features instead of steadying them.
        terms["feature_temporal"] = self.feature_temporal_weight * temporal_feature_loss(
            feat_cur, backward_warp(feat_prev, small_flow), p.mask) / feat_cur.pow(2).mean().clamp_min(1e-8)
        terms["total"] = terms["total"] + terms["temporal"] + terms["feature_temporal"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        return model(content).clamp(0, 1)

    def export(self, model):
        meta = {"arch": "reconet", "config": json.dumps(model.config()), "styles": json.dumps(self.style_names()),
                "temporal": json.dumps({"output": self.temporal_weight, "feature": self.feature_temporal_weight})}
        return half(model.state_dict(), self.storage), meta
