"""Fast Video Multi-Style Transfer: Gao, Gu, Chen, Zhou & Dou, WACV 2020. One trained network holds many styles
(multi-instance normalisation: one affine set per style, chosen by index and blendable by weights) and a ConvLSTM
whose state the stream carries from frame to frame, so video is stable without flow at inference
(core/nets/video_multistyle.py, recipe core/train/video_multistyle_recipe.py).

On a stream the ConvLSTM state lives in the stream state's ``data`` and is dropped on scene cuts and size changes;
a style switch keeps it, so the picture changes style without a flash of a cold start. Without a stream state (a
still image, ``--no-temporal``) every frame starts from an empty state: the per-frame baseline. Deviation:
``strength`` blends with the photo in pixels (the paper has no strength control).
"""
from __future__ import annotations

import dataclasses
import json

import torch

from ..errors import BrushstreamError
from ..nets.pretrained import trained_network
from ..nets.video_multistyle import ARCH, STRIDE, VideoMultiStyleNet
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "video_multistyle_8"
STATE_KEY = "convlstm"


@register
class VideoMultiStyle(StyleMethod):
    name = "video_multistyle"
    summary = ("Fast Video Multi-Style Transfer, Gao et al. 2020: many styles in one network, blendable, stable "
               "on video through a ConvLSTM, no flow at inference")
    # Live: 7.0 fps at 640x360 with its memory on 2 cores (docs/benchmarks/measurements.md), LST's live pace.
    capabilities = Capabilities(arbitrary_style=False, style_blend=True, video_native=True, realtime=True,
                                trainable=True, trained_styles=True)
    stride = STRIDE
    archs = (ARCH,)
    options = (Option("model", "text", DEFAULT_MODEL, "trained network: manifest name or .safetensors file "
                      "(brushstream train video_multistyle)", weights="model"),)

    def __init__(self, model: str = DEFAULT_MODEL):
        super().__init__()
        self.net, meta, _ = trained_network(model, ARCH, VideoMultiStyleNet)
        styles = tuple(json.loads(meta.get("styles", "[]")))
        if len(styles) != self.net.styles:
            raise BrushstreamError(f"{model}: names {len(styles)} styles in its metadata but holds {self.net.styles}")
        self.capabilities = dataclasses.replace(type(self).capabilities, fixed_styles=styles)

    def _encode_style(self, *, images, refs, weights):
        mix = torch.zeros(self.net.styles, dtype=torch.float64)
        for ref, weight in zip(refs, weights):
            mix[ref] += weight
        return mix   # the affine sets of the multi-instance norms are mixed with these weights

    def _stylize(self, *, content, code, strength, mask, state):
        weights = code.data.to(content.device, content.dtype).expand(content.shape[0], -1)
        memory = None if state is None else state.data.get(STATE_KEY)   # the state drops it on a size change
        y, memory = self.net(content, weights, memory)
        if state is not None:
            state.data[STATE_KEY] = memory
        return blend_strength(y, content, strength)
