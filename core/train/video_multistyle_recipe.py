"""Fast Video Multi-Style Transfer (Gao et al., WACV 2020, section 3.2): one network for many styles trained on
short frame sequences with the perceptual losses (content, Gram style per frame, TV), the short-term temporal
loss between consecutive outputs and the long-term temporal loss between every output and the sequence's first,
both with the flow and occlusion masks of training data only (none at inference: the ConvLSTM carries the
history). Temporal terms are ReCoNet's luminance-aware form (the same authors' eq. 5, core/train/losses.py).

Data: sequences of ``frames`` frames made from each training photo by a smooth camera-like flow applied 1, 2, ...
times (exact long-term flow, first-order exact short-term flow; core/train/motion.py's ``smooth_flow``), with a
small illumination drift, plus real consecutive clip pairs with DIS flow as two-frame sequences.
Each image of a batch gets its own style (the paper draws one style per batch).

Deviations (paper value in brackets): training starts from a trained single-style real-time ReCoNet for every
style [random weights]; synthetic sequences and clip pairs [FlyingThings3D and Monkaa video with
ground-truth flow]; 3-frame sequences at 128 px crops and a few thousand steps on a CPU; the project's relative
perceptual losses (perceptual.py) with temporal weights tuned to them; cosine decay; float16 file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from ..errors import BrushstreamError
from ..nets.video_multistyle import ARCH, VideoMultiStyleNet, start_from_reconet
from ..ops.warp import backward_warp, inside_frame
from .losses import temporal_output_loss
from .motion import _uniform, clip_pair_count, clip_pairs_for, smooth_flow
from .perceptual import PerceptualRecipe, half, pick_styles, style_per_image_hp
from .recipe import hp, register_recipe


@dataclass
class Sequences:
    frames: torch.Tensor         # (B, T, 3, H, W)
    short_flow: torch.Tensor     # (B, T, 2, H, W): frame t -> t-1 (index 0 unused)
    short_mask: torch.Tensor     # (B, T, 1, H, W)
    long_flow: torch.Tensor      # (B, T, 2, H, W): frame t -> 0
    long_mask: torch.Tensor      # (B, T, 1, H, W)


def synthetic_sequences(photos: torch.Tensor, rng: torch.Generator, length: int, max_shift: float) -> Sequences:
    """Frame t is the photo moved by t times one smooth flow f (frame_t(x) = photo(x + t f(x))), with a gain drift:
    the flow from t to 0 is exactly t f, from t to t - 1 it is f up to (t - 1) |grad f| |f| (the flow is smooth)."""
    b, _, h, w = photos.shape
    dev = photos.device
    flow = smooth_flow(rng, b, h, w, max_shift).to(dev)
    gain = _uniform(rng, (b, 1, 1, 1), -0.04, 0.04).to(dev)
    frames, long_flow = [], []
    for t in range(length):
        moved = backward_warp(photos, flow * t) if t else photos
        frames.append((moved * (1 + gain * t)).clamp(0, 1))
        long_flow.append(flow * t)
    long_flow = torch.stack(long_flow, 1)
    short_flow = flow[:, None].expand(b, length, 2, h, w)
    long_mask = torch.stack([inside_frame(long_flow[:, t]).to(photos.dtype) for t in range(length)], 1)
    short_mask = torch.stack([inside_frame(flow).to(photos.dtype)] * length, 1) * long_mask
    return Sequences(torch.stack(frames, 1), short_flow, short_mask, long_flow, long_mask)


@register_recipe
@dataclass
class VideoMultiStyleRecipe(PerceptualRecipe):
    name = "video_multistyle"
    method = "video_multistyle"
    summary = "Fast Video Multi-Style Transfer (Gao et al. 2020): many styles, stable on video, no flow at inference"

    size: int = hp(128, paper="512x218 (FlyingThings3D crops)", help="training crop size in px", minimum=16)
    channels: int = hp(48, paper="128", help="channels at 1/4 resolution", minimum=8)
    blocks: int = hp(2, paper="5 residual blocks in all", help="residual blocks before and after the ConvLSTM",
                     minimum=0)
    frames: int = hp(3, paper="sequences of several frames", help="frames per training sequence (at least 3 for the "
                     "long-term loss)", minimum=2)
    style_weight: float = hp(10.0, paper="tuned per style set, on unnormalised losses",
                             help="weight of the relative Gram style loss (mean over layers)", minimum=0)
    short_weight: float = hp(50.0, paper="lambda_st, on unnormalised losses", minimum=0,
                             help="weight of the short-term temporal loss (consecutive outputs)")
    long_weight: float = hp(25.0, paper="lambda_lt, on unnormalised losses", minimum=0,
                            help="weight of the long-term temporal loss (each output against the first)")
    max_shift: float = hp(5.0, help="largest synthetic translation per frame in px (at 128 px crops)", minimum=0)
    clip_fraction: float = hp(0.25, help="share of each batch taken from real clip pairs (0: synthetic only)",
                              minimum=0)
    clips: str = hp("", help="folder of .mp4 clips for real pairs (frames from 60 on); without it every sequence "
                    "is synthetic")
    start_from: str = hp("reconet_rt_starry_night", paper="random initialisation", help="a real-time ReCoNet "
                         "(manifest name or file) whose weights start every style, so training only has to tell the "
                         "styles apart; 'none': random weights")
    style_per_image: bool = style_per_image_hp()
    storage: str = hp("float16", help="dtype of the saved file", choices=("float16", "float32"))

    def check(self) -> None:
        super().check()
        if len(self.style) < 2:
            raise BrushstreamError(f"a multi-style network needs at least two --style images, got {len(self.style)}")

    def build_model(self) -> VideoMultiStyleNet:
        torch.manual_seed(self.seed)
        net = VideoMultiStyleNet(len(self.style), self.channels, self.blocks)
        if self.start_from != "none":
            from ..nets.pretrained import trained_network

            reconet, _, _ = trained_network(self.start_from, "reconet")
            try:
                start_from_reconet(net, reconet.state_dict())
            except (KeyError, ValueError) as exc:
                raise BrushstreamError(f"--start-from {self.start_from}: not a real-time ReCoNet with "
                                       f"{self.channels} channels and {2 * self.blocks} residual blocks ({exc})") from None
        return net

    def setup(self, device: torch.device) -> None:
        self.setup_loss_network(device)
        self.grams = [self.loss_net.style_grams(s) for s in self.load_style_images(device)]
        self.clip_pairs = clip_pairs_for(self.clips, self.clip_fraction)

    def _one_hot(self, indices: list[int], device, dtype) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.tensor(indices), len(self.style)).to(device, dtype)

    def _sequence_terms(self, model, frames, weights, indices, short, long=None):
        """Perceptual terms of every frame plus the temporal terms; ``short``/``long`` = (flow, mask) per frame."""
        b, t = frames.shape[:2]
        state, outs = None, []
        # The network runs in float32 even under a bf16 run: its depthwise convolutions are about ten times slower
        # in bfloat16 on a CPU (measured, 2026-12-07); the VGG16 loss network keeps the autocast.
        with torch.autocast(frames.device.type, enabled=False):
            for i in range(t):
                y, state = model(frames[:, i].float(), weights.float(), state)
                outs.append(y)
        outputs = torch.stack(outs, 1)
        targets = {name: torch.cat([self.grams[j][name] for j in indices]).repeat_interleave(t, 0)
                   for name in self.style_layers}
        # perceptual_terms pairs output k with target k: order the flattened batch image-major to match.
        terms = self.perceptual_terms(outputs.flatten(0, 1), frames.flatten(0, 1), targets)
        short_terms, long_terms = [], []
        for i in range(1, t):
            flow, mask = short[0][:, i], short[1][:, i]
            short_terms.append(temporal_output_loss(outputs[:, i], backward_warp(outputs[:, i - 1], flow),
                                                    frames[:, i], backward_warp(frames[:, i - 1], flow), mask))
            if long is not None and i > 1:
                flow, mask = long[0][:, i], long[1][:, i]
                long_terms.append(temporal_output_loss(outputs[:, i], backward_warp(outputs[:, 0], flow),
                                                       frames[:, i], backward_warp(frames[:, 0], flow), mask))
        terms["short_term"] = self.short_weight * torch.stack(short_terms).mean()
        terms["long_term"] = (self.long_weight * torch.stack(long_terms).mean() if long_terms
                              else outputs.new_zeros(()))
        return terms

    def losses(self, model, content, step, rng):
        b = content.shape[0]
        real = clip_pair_count(self.clip_pairs, b, self.clip_fraction, most=b - 1)
        indices = pick_styles(rng, len(self.style), self.batch, b, self.style_per_image)
        weights = self._one_hot(indices, content.device, content.dtype)
        seq = synthetic_sequences(content[:b - real], rng, self.frames, self.max_shift * content.shape[-1] / 128)
        terms = self._sequence_terms(model, seq.frames, weights[:b - real], indices[:b - real],
                                     (seq.short_flow, seq.short_mask), (seq.long_flow, seq.long_mask))
        if real:
            p = self.clip_pairs.sample(rng, real, content.shape[-1], content.device)
            frames = torch.stack((p.previous, p.current), 1)
            flow = torch.stack((torch.zeros_like(p.flow), p.flow), 1)
            mask = torch.stack((p.mask, p.mask), 1)
            clip_terms = self._sequence_terms(model, frames, weights[b - real:], indices[b - real:], (flow, mask))
            share = real / b
            terms = {k: (1 - share) * v + share * clip_terms[k] if k != "long_term" else v for k, v in terms.items()}
        terms["total"] = terms["total"] + terms["short_term"] + terms["long_term"]
        return terms

    @torch.no_grad()
    def preview(self, model, content):
        """Preview row i shows style i mod S."""
        indices = [i % len(self.style) for i in range(content.shape[0])]
        return model(content, self._one_hot(indices, content.device, content.dtype))[0].clamp(0, 1)

    def export(self, model):
        meta = {"arch": ARCH, "config": json.dumps(model.config()), "styles": json.dumps(self.style_names()),
                "temporal": json.dumps({"short": self.short_weight, "long": self.long_weight})}
        return half(model.state_dict(), self.storage), meta
