"""Coherent Online Video Style Transfer (Chen et al., ICCV 2017, sec. 3.3): the traceable-mask network, trained with
the stylization networks frozen, on frame pairs (previous, current) with flow and reliability mask M_gt:
coherence alpha * mean(M_gt * (O_t - warp(O_{t-1}))^2): traceable pixels follow the previous output, and
occlusion beta * mean((1 - M_gt) * (O_t - S_t)^2): untraceable pixels are the per-frame stylization S_t, where
O_t = decode(M * warp(F_{t-1}) + (1 - M) * F_t) and O_{t-1} = S_{t-1} (the previous composite is F_{t-1} itself).
Each step picks one of several frozen Johnson networks (--models), so one mask network serves them all (the
composite's input is channel-agnostic: core/nets/coherent_online.py). No VGG: a step costs a few forward passes of
a Johnson network and one backward pass through its decoder.
Pairs: synthetic motion on the training photos (core/train/motion.py), with pasted patches of another photo as
occlusions (synthetic motion only occludes at the frame's edge), plus real clip pairs with DIS flow and Ruder et
al.'s reliability mask (--clips; frames from 60 on, so the frames the video benches grade are never trained on).
Deviations: a fixed flow (DIS at inference, exact or DIS in training) instead of the jointly trained flow network,
so no flow loss; alpha = beta = 1 on per-pixel means (the paper's weights were not checked here); pasted occluders;
CPU crop size and step count; the project's cosine decay.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..errors import BrushstreamError
from ..nets.coherent_online import MaskNet, coherent_step, johnson_split
from ..nets.pretrained import trained_network
from ..ops.warp import backward_warp
from .motion import FramePairs, clip_pair_count, clip_pairs_for, synthetic_pairs
from .recipe import Recipe, hp, register_recipe

DEFAULT_MODELS = ("johnson_starry_night", "johnson_rt_udnie", "johnson_the_great_wave")


def paste_occluders(pairs: FramePairs, rng: torch.Generator, count: int) -> FramePairs:
    """``count`` rectangles (an eighth to a third of the side) of another photo pasted into each current frame: new
    content the previous frame never showed, so M_gt is 0 there."""
    if count <= 0:
        return pairs
    current, mask = pairs.current.clone(), pairs.mask.clone()
    donor = pairs.previous.roll(1, 0).flip(-2, -1)    # another photo of the batch (the same one turned, alone)
    b, _, h, w = current.shape
    for i in range(b):
        for _ in range(count):
            ph = int(torch.randint(max(1, h // 8), max(2, h // 3) + 1, (), generator=rng))
            pw = int(torch.randint(max(1, w // 8), max(2, w // 3) + 1, (), generator=rng))
            top = int(torch.randint(h - ph + 1, (), generator=rng))
            left = int(torch.randint(w - pw + 1, (), generator=rng))
            window = (i, slice(None), slice(top, top + ph), slice(left, left + pw))
            current[window] = donor[window]
            mask[window] = 0
    return FramePairs(pairs.previous, current, pairs.flow, mask)


@register_recipe
@dataclass
class CoherentRecipe(Recipe):
    name = "coherent"
    method = ""        # a component: the coherent method loads it as --mask-model, beside a Johnson --model
    summary = "Coherent Online Video Style Transfer (Chen et al. 2017): the traceable-mask network for Johnson models"

    models: tuple[str, ...] = hp(DEFAULT_MODELS, paper="one stylization network per mask network",
                                 help="frozen Johnson networks (manifest names or files), one drawn per step")
    size: int = hp(96, help="training crop size in px (a multiple of 4)", minimum=16)
    steps: int = hp(1500, help="optimisation steps", minimum=1)
    batch: int = hp(4, help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-3, help="Adam learning rate", minimum=0)
    alpha: float = hp(1.0, help="weight of the coherence term (traceable pixels follow the warped previous output)",
                      minimum=0)
    beta: float = hp(1.0, help="weight of the occlusion term (untraceable pixels equal the per-frame output)",
                     minimum=0)
    max_shift: float = hp(6.0, help="largest synthetic translation in px (at 128 px; scaled with the crop)", minimum=0)
    occluders: int = hp(2, paper="none (real video pairs)", help="patches of another photo pasted into each "
                        "synthetic current frame as occlusions", minimum=0)
    clip_fraction: float = hp(0.5, help="share of each batch taken from real clip pairs (with --clips)", minimum=0)
    clips: str = hp("", help="folder of .mp4 clips for real pairs (frames from 60 on); without it every pair is "
                    "synthetic")

    def check(self) -> None:
        super().check()
        if self.size % 4:
            raise BrushstreamError(f"--size must be a multiple of 4 (the Johnson networks' stride), got {self.size}")
        if not self.models:
            raise BrushstreamError("--models needs at least one Johnson network")

    def build_model(self) -> MaskNet:
        torch.manual_seed(self.seed)
        return MaskNet()

    def setup(self, device: torch.device) -> None:
        self.nets = [trained_network(m, "johnson_transform")[0].to(device) for m in self.models]
        self.clip_pairs = clip_pairs_for(self.clips, self.clip_fraction)

    def pairs(self, content: torch.Tensor, rng: torch.Generator) -> FramePairs:
        """Synthetic motion with pasted occluders on the photos; the last ``clip_fraction`` from real clips."""
        b = content.shape[0]
        real = clip_pair_count(self.clip_pairs, b, self.clip_fraction)
        pairs = synthetic_pairs(content[:b - real], rng, self.max_shift * content.shape[-1] / 128) if real < b else None
        pairs = None if pairs is None else paste_occluders(pairs, rng, self.occluders)
        if real:
            clip = self.clip_pairs.sample(rng, real, content.shape[-1], content.device)
            pairs = clip if pairs is None else pairs.cat(clip)
        return pairs

    def forward_pair(self, model, net, p: FramePairs) -> tuple[torch.Tensor, ...]:
        """(O_t, M, S_t, warp(S_{t-1})) of one frozen network on the pairs; gradients reach only ``model``."""
        split = johnson_split(net)
        with torch.no_grad():
            f_prev, f_cur = split.encode(p.previous), split.encode(p.current)
            s_prev, s_cur = split.decode(f_prev).clamp(0, 1), split.decode(f_cur).clamp(0, 1)
            followed = backward_warp(s_prev, p.flow)
        composite, m = coherent_step(model, f_cur, p.current, f_prev, p.previous, p.flow, split.stride)
        return split.decode(composite).clamp(0, 1), m, s_cur, followed

    def losses(self, model, content, step, rng):
        p = self.pairs(content, rng)
        net = self.nets[int(torch.randint(len(self.nets), (), generator=rng))]
        out, _, s_cur, followed = self.forward_pair(model, net, p)
        terms = {"coherence": self.alpha * (p.mask * (out - followed).pow(2)).mean(),
                 "occlusion": self.beta * ((1 - p.mask) * (out - s_cur).pow(2)).mean()}
        terms["total"] = terms["coherence"] + terms["occlusion"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        """Per photo: the composite output of a fixed synthetic pair beside its mask (white: traceable)."""
        p = paste_occluders(synthetic_pairs(content, torch.Generator().manual_seed(self.seed), self.max_shift),
                            torch.Generator().manual_seed(self.seed), self.occluders)
        out, m, _, _ = self.forward_pair(model, self.nets[0], p)
        mask = torch.nn.functional.interpolate(m, size=out.shape[-2:], mode="nearest").expand_as(out)
        return torch.cat((out, mask), dim=-1)

    def export(self, model):
        meta = {"arch": "coherent_mask", "config": json.dumps(model.config()), "models": json.dumps(list(self.models)),
                "losses": json.dumps({"alpha": self.alpha, "beta": self.beta}),
                "input": "mean and max over channels of |warp(F_prev) - F| / std_c(F), and mean_c |warp(I_prev) - I| "
                         "area-pooled, at the Johnson networks' 1/4 feature grid",
                "output": "traceable mask in [0, 1]", "source": "trained by Brushstream (core/train/coherent_recipe.py)"}
        return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, meta
