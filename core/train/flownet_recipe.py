"""FlowNetS and FlowNetC (Dosovitskiy et al., ICCV 2015) trained on Flying-Chairs-like pairs made on the fly from the
training photos (core/flow/synthetic.py), with the released training's multi-scale end-point-error loss: flow6 ..
flow2 against the ground truth area-downsampled and divided by div_flow (20), each scale's EPE summed over its
pixels (averaged over the batch) and weighted 0.32, 0.08, 0.02, 0.01, 0.005 from flow6 to flow2, as the released
training and its ports (FlowNetPytorch, MMFlow) do: with the sum over pixels the finer scales still count most.
Adam at the paper's 1e-4 with betas 0.9/0.999 (FlowNetC warmed up, as the paper does) and the released solver's
weight decay 4e-4. Deviations: synthetic blobs instead of rendered chairs, CPU defaults (width 0.25, 128 px crops
instead of 512x384, thousands of steps instead of 600k), the project's cosine decay instead of halving the rate
every 100k steps after 300k.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..flow.flownet import ARCHS, DIV_FLOW, STRIDE, FlowNet
from ..flow.synthetic import held_out_pairs, make_pairs
from .motion import clip_pair_count, clip_pairs_for
from .recipe import Recipe, hp, register_recipe

SCALE_WEIGHTS = (0.005, 0.01, 0.02, 0.08, 0.32)    # flow2 .. flow6 (released training)
EVAL_PAIRS = 20


def multiscale_epe(predictions: list[torch.Tensor], flow: torch.Tensor, div_flow: float = DIV_FLOW,
                   weights: tuple[float, ...] = SCALE_WEIGHTS, valid: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Each scale's weighted loss: weight x (sum over pixels of |prediction - area-downsampled flow / div_flow|),
    averaged over the batch. ``predictions`` and ``weights`` run from the finest scale (flow2) to the coarsest.
    ``valid`` (B, 1, H, W), 1 where the label is trusted, weighs each pixel by its area-downsampled share."""
    if len(weights) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions need as many weights, got {len(weights)}")
    target = flow / div_flow
    terms = []
    for pred, weight in zip(predictions, weights):
        truth = F.adaptive_avg_pool2d(target, pred.shape[-2:])
        epe = (pred - truth).pow(2).sum(1).sqrt()
        if valid is not None:
            epe = epe * F.adaptive_avg_pool2d(valid, pred.shape[-2:])[:, 0]
        terms.append(weight * epe.sum((1, 2)).mean())
    return terms


@torch.no_grad()
def mean_epe(model: torch.nn.Module, frame1: torch.Tensor, frame2: torch.Tensor, flow: torch.Tensor,
             batch: int = 4) -> float:
    """The mean end-point error in pixels of ``model`` (eval mode) over all pixels of the given pairs."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, frame1.shape[0], batch):
        pred = model(frame1[i:i + batch].to(device), frame2[i:i + batch].to(device)).float().cpu()
        total += (pred - flow[i:i + batch]).pow(2).sum(1).sqrt().sum().item()
    model.train(was_training)
    return total / (flow.shape[0] * flow.shape[-2] * flow.shape[-1])


@dataclass
class FlowNetRecipe(Recipe):
    """What FlowNetS and FlowNetC share; the subclasses name the architecture."""
    method = ""
    arch = ""
    clip_pairs = None   # set by setup() when --clips and --clip-fraction ask for real pairs

    size: int = hp(128, paper="Flying Chairs' 512x384 images", help="training crop size in px (a multiple of 64)",
                   minimum=64)
    steps: int = hp(2000, paper="600k (halving the rate every 100k after 300k)", help="optimisation steps", minimum=1)
    batch: int = hp(8, "paper", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-4, "paper", help="Adam learning rate", minimum=0)
    weight_decay: float = hp(4e-4, "paper", help="Adam weight decay (the released Caffe solver's)", minimum=0)
    width: float = hp(0.25, paper="1.0", help="channel scale of every convolution", minimum=0.05)
    div_flow: float = hp(DIV_FLOW, "paper", help="the network predicts flow divided by this (released models: 20)",
                         minimum=1e-3)
    scale_weights: tuple[float, ...] = hp(SCALE_WEIGHTS, "paper",
                                          help="loss weights of flow2 .. flow6 (released training)")
    max_objects: int = hp(5, help="most foreground sprites per synthetic pair", minimum=1)
    motion: float = hp(1.0, help="scale of the synthetic motion ranges (see core/flow/synthetic.py)", minimum=0)
    augment: bool = hp(True, "paper", help="photometric augmentation (section 5.3, at about half the paper's ranges)")
    still: float = hp(0.1, paper="0: every Flying Chairs pair moves", help="share of synthetic pairs in which nothing "
                      "moves: without them 0.2%% of pixels move under 0.5 px and a network learns the data's mean "
                      "motion instead of reading the correlation", minimum=0, maximum=1)
    warmup: int = hp(0, help="steps of linear learning-rate warm-up from a hundredth of --lr", minimum=0)
    clip_fraction: float = hp(0.0, paper="0: Flying Chairs only", minimum=0, help="share of each batch taken from "
                              "consecutive frames of real clips, labelled with DIS flow where its forward-backward "
                              "check trusts it (the rest of the pixels carry no loss)")
    clips: str = hp("", help="folder of .mp4 clips for --clip-fraction (frames from 60 on, so the first 60 that the "
                    "video benches grade are never seen)")

    def check(self) -> None:
        super().check()
        if self.size % STRIDE:
            raise BrushstreamError(f"--size must be a multiple of {STRIDE} (FlowNet's coarsest scale), got {self.size}")
        if len(self.scale_weights) != 5:
            raise BrushstreamError(f"--scale-weights needs 5 values (flow2 .. flow6), got {len(self.scale_weights)}")

    def network_options(self) -> dict:
        return {"width": self.width, "div_flow": self.div_flow}

    def build_model(self) -> FlowNet:
        torch.manual_seed(self.seed)
        return ARCHS[self.arch](**self.network_options())

    def optimizer(self, model):
        return torch.optim.Adam(model.parameters(), lr=self.lr, betas=(0.9, 0.999), weight_decay=self.weight_decay)

    def scheduler(self, optimizer):
        """The project's cosine decay, after ``warmup`` steps rising linearly from a hundredth of the rate."""
        cosine = super().scheduler(optimizer).lr_lambdas[0]
        warmup = self.warmup
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: cosine(s) * (min(1.0, 0.01 + 0.99 * s / warmup) if warmup else 1.0))

    def setup(self, device: torch.device) -> None:
        super().setup(device)
        self.clip_pairs = clip_pairs_for(self.clips, self.clip_fraction)

    def pairs(self, content: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(frame1, frame2, flow 1 -> 2, valid): synthetic pairs, the last ``clip_fraction`` of the batch from real
        clips with their DIS pseudo-labels (a clip pair's current frame is frame 1: its flow points back)."""
        b = content.shape[0]
        real = clip_pair_count(self.clip_pairs, b, self.clip_fraction)
        frame1, frame2, flow, _ = make_pairs(content[:b - real], rng, max_objects=self.max_objects,
                                             motion=self.motion, augment=self.augment, still=self.still)
        valid = torch.ones_like(flow[:, :1])
        if real:
            clip = self.clip_pairs.sample(rng, real, content.shape[-1], content.device)
            frame1, frame2 = torch.cat((frame1, clip.current)), torch.cat((frame2, clip.previous))
            flow, valid = torch.cat((flow, clip.flow)), torch.cat((valid, clip.mask))
        return frame1, frame2, flow, valid

    def losses(self, model, content, step, rng):
        frame1, frame2, flow, valid = self.pairs(content, rng)
        scales = multiscale_epe(model(frame1, frame2), flow, self.div_flow, self.scale_weights, valid)
        terms = {f"flow{i + 2}": term for i, term in enumerate(scales)}
        terms["total"] = sum(scales)
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        """Per photo a 2x2 tile: frame 1, frame 2 / true flow, predicted flow (one colour scale per tile)."""
        from ..flow.visualise import flow_to_rgb

        frame1, frame2, flow, _ = make_pairs(content, torch.Generator().manual_seed(self.seed), augment=False,
                                             max_objects=self.max_objects, motion=self.motion)
        pred = model(frame1, frame2).float()
        colours = flow_to_rgb(torch.cat((flow, pred), -1).cpu()).to(frame1.device)
        return torch.cat((torch.cat((frame1, frame2), -1), colours), -2)

    def export(self, model):
        meta = {"arch": self.arch, "config": json.dumps(model.config()), "width": str(self.width),
                "div_flow": str(self.div_flow), "input": "two RGB frames in [0, 1]; the pair's channel means are "
                "subtracted inside", "output": "flow in pixels from frame 1 to frame 2",
                "source": "trained by Brushstream (core/train/flownet_recipe.py)"}
        meta.update({k: str(v) for k, v in self.network_options().items() if k not in meta})
        evaluation = Path(self.content_dir).parent / "content_eval" if self.content_dir else None
        if evaluation is not None and evaluation.is_dir():   # the held-out photos beside the training folder
            frame1, frame2, flow, _ = held_out_pairs(evaluation, EVAL_PAIRS, self.size, seed=0,
                                                     max_objects=self.max_objects, motion=self.motion)
            meta["epe_synthetic_eval"] = f"{mean_epe(model, frame1, frame2, flow):.3f}"
            meta["epe_synthetic_eval_zero_flow"] = f"{flow.pow(2).sum(1).sqrt().mean().item():.3f}"
            meta["epe_synthetic_eval_pairs"] = f"{EVAL_PAIRS} pairs of {self.size} px from content_eval, seed 0"
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta


@register_recipe
@dataclass
class FlowNetSRecipe(FlowNetRecipe):
    name = "flownets"
    arch = "flownets"
    summary = "FlowNetS optical flow (Dosovitskiy et al. 2015) on synthetic Flying-Chairs-like pairs"


@register_recipe
@dataclass
class FlowNetCRecipe(FlowNetRecipe):
    name = "flownetc"
    arch = "flownetc"
    summary = "FlowNetC optical flow with a correlation layer (Dosovitskiy et al. 2015) on synthetic pairs"

    max_displacement: int = hp(20, "paper", help="the correlation's largest displacement at conv3 (1/8 scale)",
                               minimum=0)
    warmup: int = hp(100, paper="10k steps from 1e-6 to 1e-4 (FlowNetC's gradients exploded at 1e-4)",
                     help="steps of linear learning-rate warm-up from a hundredth of --lr", minimum=0)

    corr_stride: int = hp(2, "paper", help="the correlation's displacement step at conv3 (stride2; 1 step = 8 px of "
                          "the input)", minimum=1)

    def check(self) -> None:
        super().check()
        if self.max_displacement < self.corr_stride:
            raise BrushstreamError(f"--max-displacement ({self.max_displacement}) must be at least --corr-stride "
                                   f"({self.corr_stride}): the correlation would see no displacement but zero")

    def network_options(self) -> dict:
        return {**super().network_options(), "max_displacement": self.max_displacement, "corr_stride": self.corr_stride}
