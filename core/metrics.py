"""Quality metrics (DESIGN.md "Quality, measured"), all on the VGG16 ImageNet backbone.

- Gram style distance: mean over relu1_2, relu2_2, relu3_3, relu4_3 of ||G(x) - G(s)||_F / ||G(s)||_F.
- Mean/std style distance: the same relative distance on the per-channel mean and std vectors.
- Content distance: ||F(x) - F(c)||_F / ||F(c)||_F at relu3_3 (relu4_3 optionally).
A style *ratio* divides the output's Gram distance by the content photo's own distance to the style,
so 1.0 means "no closer to the style than the photo was" and lower is more stylized.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .nets.pretrained import vgg16_features
from .ops.stats import gram, mean_std

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
CONTENT_LAYER = "relu3_3"


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@dataclass
class StyleTargets:
    """A style image's statistics, computed once and compared against many outputs."""
    grams: dict[str, torch.Tensor]
    means: dict[str, torch.Tensor]
    stds: dict[str, torch.Tensor]


class QualityMetrics:
    # The photo's side of a comparison (its own distance to each style, its content features) is the same for every
    # method judged on it: kept for the last photos seen, so a bench of several methods computes it once per photo.
    REMEMBERED_PHOTOS = 32

    def __init__(self, weights: str | None = None, content_layer: str = CONTENT_LAYER):
        self.vgg = vgg16_features(weights) if weights else vgg16_features()
        self.content_layer = content_layer
        self._photos: dict[tuple, dict] = {}

    @torch.no_grad()
    def style_targets(self, style: torch.Tensor) -> StyleTargets:
        feats = self.vgg(style, STYLE_LAYERS)
        stats = {lv: mean_std(f) for lv, f in feats.items()}
        return StyleTargets({lv: gram(f) for lv, f in feats.items()},
                            {lv: s[0] for lv, s in stats.items()}, {lv: s[1] for lv, s in stats.items()})

    @torch.no_grad()
    def style_distance(self, image: torch.Tensor, targets: StyleTargets) -> dict[str, float]:
        feats = self.vgg(image, STYLE_LAYERS)
        g = sum(_rel(gram(feats[lv]), targets.grams[lv]) for lv in STYLE_LAYERS) / len(STYLE_LAYERS)
        ms = 0.0
        for lv in STYLE_LAYERS:
            m, s = mean_std(feats[lv])
            ms += 0.5 * (_rel(m, targets.means[lv]) + _rel(s, targets.stds[lv]))
        return {"gram": g, "meanstd": ms / len(STYLE_LAYERS)}

    def _photo(self, content: torch.Tensor) -> dict:
        """The remembered side of ``content`` (found again by its pixels, so a re-loaded photo is the same photo)."""
        key = (tuple(content.shape), float(content.double().sum()), float(content[..., ::7, ::5].double().sum()))
        if key not in self._photos:
            if len(self._photos) >= self.REMEMBERED_PHOTOS:
                self._photos.pop(next(iter(self._photos)))
            lv = self.content_layer
            self._photos[key] = {"features": self.vgg(content, (lv,))[lv], "style_distance": {}}
        return self._photos[key]

    @torch.no_grad()
    def content_distance(self, image: torch.Tensor, content: torch.Tensor) -> float:
        if image.shape[-2:] != content.shape[-2:]:
            raise ValueError("content distance needs images of the same size")
        lv = self.content_layer
        return _rel(self.vgg(image, (lv,))[lv], self._photo(content)["features"])

    @torch.no_grad()
    def evaluate(self, output: torch.Tensor, content: torch.Tensor, targets: StyleTargets) -> dict[str, float]:
        """Gram/mean-std distances of output and content to the style, their ratios and the content distance."""
        own = self._photo(content)["style_distance"]
        style_key = float(targets.grams[STYLE_LAYERS[0]].double().sum())
        if style_key not in own:
            own[style_key] = self.style_distance(content, targets)
        out_d, base_d = self.style_distance(output, targets), own[style_key]
        return {"gram": out_d["gram"], "gram_content": base_d["gram"], "gram_ratio": out_d["gram"] / base_d["gram"],
                "meanstd": out_d["meanstd"], "meanstd_ratio": out_d["meanstd"] / base_d["meanstd"],
                "content": self.content_distance(output, content)}


class WarpingError:
    """Temporal stability: warping error as Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018.

    For each consecutive pair, E_t = sum(M_t * (O_t - warp(O_{t-1}))^2) / (3 * sum(M_t)): output t-1 warped
    to t by the flow of the *input* frames, compared where that flow is reliable (M_t: Ruder et al.'s
    forward-backward and motion-boundary mask). The clip's figure is the mean over pairs. The same flow
    and mask give the input clip's own warping error, the floor that flow errors and lighting set.
    Stream frames in with ``update``; the flow backend defaults to DIS "medium" at full size and may
    differ from the one the method used (so a method is not graded by its own flow).
    """

    def __init__(self, flow=None):
        if flow is None:
            from .flow import get_flow
            flow = get_flow("dis", preset="medium", scale=1.0)
        self.flow = flow
        self.output_errors: list[float] = []
        self.input_errors: list[float] = []
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None

    @staticmethod
    def _masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
        return float((mask * (a - b) ** 2).sum() / (3 * mask.sum()).clamp_min(1.0))

    @torch.no_grad()
    def update(self, frame: torch.Tensor, output: torch.Tensor) -> tuple[float, float] | None:
        """Add frame t (input and output, (1, 3, H, W)); returns (output error, input error) of pair t-1 -> t."""
        from .ops.warp import backward_warp, reliable_flow_mask

        frame, output = frame.detach().float().cpu(), output.detach().float().cpu()
        if output.shape != frame.shape:
            raise ValueError(f"output {tuple(output.shape)} and input {tuple(frame.shape)} differ in size")
        prev, self._prev = self._prev, (frame, output)
        if prev is None or prev[0].shape != frame.shape:
            return None
        backward, forward = self.flow(frame, prev[0]), self.flow(prev[0], frame)
        mask = reliable_flow_mask(backward, forward)
        out_e = self._masked_mse(output, backward_warp(prev[1], backward), mask)
        in_e = self._masked_mse(frame, backward_warp(prev[0], backward), mask)
        self.output_errors.append(out_e)
        self.input_errors.append(in_e)
        return out_e, in_e

    def summary(self) -> dict[str, float]:
        """Clip means: output, input (the floor), and the output's excess over the floor."""
        n = max(len(self.output_errors), 1)
        out, inp = sum(self.output_errors) / n, sum(self.input_errors) / n
        return {"warping_error": out, "input_warping_error": inp, "excess": max(out - inp, 0.0), "pairs": len(self.output_errors)}
