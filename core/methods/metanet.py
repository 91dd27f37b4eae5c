"""MetaNet: Shen, Yan & Zeng, "Neural Style Transfer via Meta Networks", CVPR 2018.
encode_style is the meta network's one forward pass: the style's VGG16 statistics -> every weight of a small
transform net (the style code), which then stylizes frames at feed-forward speed. Several styles blend their
statistics with the weights. The statistics are measured with the style image at the size the meta network was
trained on (the recipe's --style-size, kept in the file): VGG features' means and spreads depend on scale, so at
another size the meta network reads statistics it never saw (starry_night at 512 px instead of 256 px gave a Gram
ratio of 1.64 instead of 0.56). Deviations: see core/nets/metanet.py.
"""
from __future__ import annotations

import json

from ..nets.metanet import STRIDE, STYLE_LAYERS, run_transform, style_statistics
from ..nets.pretrained import VGG16_DOWNLOAD, VGG16_WEIGHTS, trained_network, vgg16_features
from ..ops.resize import resize_long_side
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "metanet_styles"


@register
class MetaNetMethod(StyleMethod):
    name = "metanet"
    summary = "MetaNet, Shen et al. 2018: any style image written into a fast network in one pass"
    needs_download = f"{VGG16_DOWNLOAD}: always (the style statistics it reads)"
    capabilities = Capabilities(arbitrary_style=True, realtime=True, trainable=True)
    stride = STRIDE
    archs = ("metanet",)
    options = (Option("model", "text", DEFAULT_MODEL, "trained meta network: manifest name or .safetensors file "
                      "(brushstream train metanet)", weights="model"),)

    def __init__(self, model: str = DEFAULT_MODEL, vgg: str = VGG16_WEIGHTS):
        super().__init__()
        self.net, meta, _ = trained_network(model, "metanet")
        self.vgg = vgg16_features(vgg)
        self.training_styles = tuple(json.loads(meta.get("styles", "[]")))   # reported, not selectable
        self.statistics_size = int(json.loads(meta.get("recipe", "{}")).get("style_size", 0)) or None

    def _at_training_size(self, image):
        return resize_long_side(image, self.statistics_size) if self.statistics_size else image

    def _encode_style(self, *, images, refs, weights):
        stats = sum(w * style_statistics(self.vgg(self._at_training_size(s), STYLE_LAYERS))
                    for w, s in zip(weights, images))
        return self.net.generate(stats)

    def _stylize(self, *, content, code, strength, mask, state):
        return blend_strength(run_transform(content, code.data, self.net.residual_blocks), content, strength)
