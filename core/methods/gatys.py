"""Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016 (+ colour
preservation and coarse-to-fine from Gatys et al. 2016/2017). Deviations: VGG16 (the offline ImageNet
backbone) instead of VGG19; each loss term is divided by its target's energy so weights are scale-free.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..nets.pretrained import VGG16_DOWNLOAD, VGG16_WEIGHTS, vgg16_features
from ..nets.vgg16 import TAP_INDEX
from ..ops.resize import resize_to
from ..ops.stats import gram
from ..ops.total_variation import total_variation
from .base import Capabilities, StyleCode, StyleMethod
from .options import Option
from .registry import register

PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
PAPER_CONTENT_LAYERS = ("relu4_2",)


@register
class Gatys(StyleMethod):
    name = "gatys"
    summary = "Gatys et al. 2016: optimises the pixels (slow, strongest style)"
    needs_download = f"{VGG16_DOWNLOAD}: always (its loss network)"
    capabilities = Capabilities(arbitrary_style=True, optimisation=True, texture_synthesis=True)
    stride = 1
    default_max_pixels = 1024 * 1024   # each step is a VGG16 forward and backward pass
    options = (
        Option("steps", "int", 60, "optimiser steps, split over the scales", minimum=1, maximum=100_000,
               paper="hundreds of L-BFGS iterations per image"),
        Option("optimizer", "choice", "lbfgs", "optimiser", source="paper", choices=("lbfgs", "adam")),
        Option("lr", "float", 0.02, "Adam learning rate (L-BFGS uses its line search)",
               minimum=1e-6, maximum=10.0),
        Option("init", "choice", "content", "start image", choices=("content", "noise"), paper="noise"),
        Option("scales", "floats", (0.5, 1.0), "coarse-to-fine scales, each in (0, 1]",
               minimum=0.01, maximum=1.0, paper="1 (coarse-to-fine is Gatys et al. 2017)"),
        Option("style_layers", "names", PAPER_STYLE_LAYERS, "VGG16 style layers", source="paper",
               choices=tuple(TAP_INDEX)),
        Option("content_layers", "names", PAPER_CONTENT_LAYERS, "VGG16 content layers", source="paper",
               choices=tuple(TAP_INDEX)),
        Option("style_weight", "float", 5.0, "style loss weight (higher washes out the content)",
               minimum=0.0, maximum=1e9, paper="alpha/beta = 1e-3 with unnormalised losses"),
        Option("content_weight", "float", 1.0, "content loss weight", minimum=0.0, maximum=1e9),
        Option("tv_weight", "float", 0.0, "total-variation weight", minimum=0.0, maximum=1e9),
        Option("seed", "int", 0, "seed of the noise start", minimum=0, maximum=2**63 - 1),
    )

    def __init__(self, weights: str = VGG16_WEIGHTS, style_layers: tuple[str, ...] = PAPER_STYLE_LAYERS,
                 content_layers: tuple[str, ...] = PAPER_CONTENT_LAYERS, style_weight: float = 5.0,
                 content_weight: float = 1.0, tv_weight: float = 0.0, steps: int = 60,
                 optimizer: str = "lbfgs", lr: float = 0.02, init: str = "content",
                 scales: tuple[float, ...] = (0.5, 1.0), seed: int = 0, progress: bool = True):
        super().__init__()
        self.vgg = vgg16_features(weights)
        self.style_layers, self.content_layers = tuple(style_layers), tuple(content_layers)
        self.style_weight, self.content_weight, self.tv_weight = style_weight, content_weight, tv_weight
        self.steps, self.optimizer, self.lr, self.init = steps, optimizer, lr, init
        self.scales = tuple(sorted(scales))
        self.seed, self.progress = seed, progress
        # A host's hook, on_step(done, total, image) after each optimiser step (ComfyUI's progress with a live
        # preview); it may raise to stop the run (ComfyUI's interrupt does).
        self.on_step = None
        self._done = self._total = 0

    def _encode_style(self, *, images, refs, weights):
        # Blending Gram targets with weights has the same minimiser as the weighted sum of style losses.
        targets = {lv: 0 for lv in self.style_layers}
        for w, s in zip(weights, images):
            feats = self.vgg(s, self.style_layers)
            for lv in self.style_layers:
                targets[lv] = targets[lv] + w * gram(feats[lv])
        return targets

    def _stylize(self, *, content, code: StyleCode, strength, mask, state):
        return self._run(content, code, strength, self.init, self.content_weight)

    def synthesize(self, code: StyleCode, size: tuple[int, int]) -> torch.Tensor:
        """Texture from noise by pure Gram matching (Gatys et al. 2015): no content term, seeded noise start."""
        self.check_budget(size)
        canvas = torch.full((1, 3, *size), 0.5, device=self.device, dtype=self.dtype)
        with torch.enable_grad():
            return self._run(canvas, code.to(self.device, self.dtype), 1.0, "noise", 0.0)

    def _run(self, content, code, strength, init, content_weight):
        steps = self.steps
        self.loss_history = []   # per optimiser evaluation, every scale: what tests and hosts can plot
        gen = torch.Generator().manual_seed(self.seed)
        full = content.shape[-2:]
        x = None
        self._done, self._total = 0, sum(self._steps_at(i, steps) for i in range(len(self.scales)))
        for i, scale in enumerate(self.scales):
            size = (max(16, round(full[0] * scale)), max(16, round(full[1] * scale)))
            target = resize_to(content, size)
            if x is None:
                x = target.clone() if init == "content" else torch.rand(target.shape, generator=gen).to(target)
            else:
                x = resize_to(x, size)  # coarse result initialises the finer scale
            n = self._steps_at(i, steps)
            x = self._optimise(x, target, code, strength, content_weight, n, f"gatys {size[1]}x{size[0]}")
        return x.clamp(0, 1)

    def _steps_at(self, i: int, steps: int) -> int:
        """Coarse scales share half the budget (they are cheap and only set the layout); the finest gets the rest."""
        coarse = len(self.scales) - 1
        if coarse == 0:
            return steps
        per_coarse = max(1, steps // (2 * coarse))
        return per_coarse if i < coarse else max(1, steps - per_coarse * coarse)

    def _optimise(self, x, content, code, strength, content_weight, steps, label):
        layers = tuple(dict.fromkeys(self.style_layers + self.content_layers))
        with torch.no_grad():
            c_feats = self.vgg(content, self.content_layers)
            c_norm = {lv: c_feats[lv].pow(2).sum() for lv in self.content_layers}
            s_norm = {lv: code.data[lv].pow(2).sum() for lv in self.style_layers}
        x = x.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
        style_weight = self.style_weight * strength

        def loss_fn():
            feats = self.vgg(x, layers)
            loss = sum(content_weight * (feats[lv] - c_feats[lv]).pow(2).sum() / c_norm[lv]
                       for lv in self.content_layers) / len(self.content_layers)
            loss = loss + style_weight * sum((gram(feats[lv]) - code.data[lv]).pow(2).sum() / s_norm[lv]
                                             for lv in self.style_layers) / len(self.style_layers)
            if self.tv_weight:
                loss = loss + self.tv_weight * total_variation(x)
            self.loss_history.append(float(loss.detach()))
            return loss

        bar = tqdm(total=steps, desc=label, disable=not self.progress, dynamic_ncols=True, leave=False)
        if self.optimizer == "lbfgs":
            opt = torch.optim.LBFGS([x], lr=1.0, max_iter=steps, history_size=50, line_search_fn="strong_wolfe")

            def closure():
                opt.zero_grad()
                loss = loss_fn()
                loss.backward()
                if bar.n < steps:
                    bar.update(1)
                    self._stepped(x)
                bar.set_postfix(loss=f"{loss.item():.4g}")
                return loss
            opt.step(closure)
        else:
            opt = torch.optim.Adam([x], lr=self.lr)
            for _ in range(steps):
                opt.zero_grad()
                loss = loss_fn()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4g}")
                self._stepped(x)
        bar.close()
        return x.detach()

    def _stepped(self, x: torch.Tensor) -> None:
        self._done += 1
        if self.on_step is not None:
            self.on_step(min(self._done, self._total), self._total, x.detach())
