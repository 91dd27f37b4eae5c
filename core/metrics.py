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
    def __init__(self, weights: str | None = None, content_layer: str = CONTENT_LAYER):
        self.vgg = vgg16_features(weights) if weights else vgg16_features()
        self.content_layer = content_layer

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

    @torch.no_grad()
    def content_distance(self, image: torch.Tensor, content: torch.Tensor) -> float:
        if image.shape[-2:] != content.shape[-2:]:
            raise ValueError("content distance needs images of the same size")
        lv = self.content_layer
        return _rel(self.vgg(image, (lv,))[lv], self.vgg(content, (lv,))[lv])

    def evaluate(self, output: torch.Tensor, content: torch.Tensor, targets: StyleTargets) -> dict[str, float]:
        """Gram/mean-std distances of output and content to the style, their ratios and the content distance."""
        out_d, base_d = self.style_distance(output, targets), self.style_distance(content, targets)
        return {"gram": out_d["gram"], "gram_content": base_d["gram"], "gram_ratio": out_d["gram"] / base_d["gram"],
                "meanstd": out_d["meanstd"], "meanstd_ratio": out_d["meanstd"] / base_d["meanstd"],
                "content": self.content_distance(output, content)}
