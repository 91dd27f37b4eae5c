"""Coherent Online Video Style Transfer: Chen, Liao, Yuan, Yu & Hua, ICCV 2017.

A trained Johnson network (core/nets/johnson.py) split into encoder and decoder; on a stream the previous frame's
composite features are warped to the current frame by the state's flow (DIS unless the host passes another backend)
and kept where a small trained mask network calls them traceable (core/nets/coherent_online.py, recipe
core/train/coherent_recipe.py). The memory lives in ``state.data`` and is dropped on scene cuts and size changes;
without a state (a still image, ``--no-temporal``) it is the Johnson network frame by frame.
Deviations: a fixed flow (DIS) instead of the paper's jointly trained flow sub-network, so no flow loss; a
channel-agnostic mask input so one mask network serves every Johnson model (see the nets module); ``traceable``
scales the mask (0: per-frame output); ``strength`` blends with the photo in pixels (the paper has neither).
Runs eager PyTorch (the Johnson method's ONNX path would need the halves exported apart).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..hub import weights as weight_store
from ..nets.coherent_online import ARCH, MaskNet, coherent_step, johnson_split
from ..nets.johnson import STRIDE
from ..nets.pretrained import trained_network
from .base import Capabilities, StyleMethod, blend_strength
from .johnson import DEFAULT_MODEL
from .options import Option
from .registry import register

DEFAULT_MASK = "coherent_mask"
MEMORY = "coherent"     # state.data key: (composite features, padded input frame)


def mask_network(source: str) -> MaskNet:
    """The trained mask network of ``source`` (manifest name or file), or one line saying how to get one."""
    if source == DEFAULT_MASK and source not in weight_store.load_manifest():
        raise BrushstreamError(f"the mask network {DEFAULT_MASK!r} is not in weights_manifest.json yet; train one with "
                               f"`brushstream train coherent -o {DEFAULT_MASK}.safetensors` and pass --mask-model FILE")
    return trained_network(source, ARCH, builder=MaskNet)[0]


def flow_on_grid(flow: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """The frame's flow (1, 2, h, w) on the padded frame the networks see (``size``): the bottom/right padding to the
    stride repeats the border vectors; any other size (a working size) is resized with the vectors scaled."""
    h, w = flow.shape[-2:]
    H, W = size
    if 0 <= H - h < stride and 0 <= W - w < stride:
        return F.pad(flow, (0, W - w, 0, H - h), mode="replicate")
    scale = torch.tensor([W / w, H / h], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    return F.interpolate(flow, size=size, mode="bilinear", align_corners=False) * scale


@register
class CoherentOnline(StyleMethod):
    name = "coherent"
    summary = "Coherent Online Video Style Transfer, Chen et al. 2017: a Johnson network steadied on video by " \
              "composing its features along the flow"
    capabilities = Capabilities(arbitrary_style=False, style_blend=False, video_native=True, trainable=True,
                                trained_styles=True)
    stride = STRIDE
    batches = True
    options = (Option("model", "text", DEFAULT_MODEL, "trained Johnson network: manifest name or .safetensors file "
                      "(brushstream train johnson)", weights="model"),
               Option("mask_model", "text", DEFAULT_MASK, "traceable-mask network: manifest name or .safetensors "
                      "file (brushstream train coherent); one serves every Johnson network", weights="mask"),
               Option("traceable", "float", 1.0, "scales the traceable mask: 1 keeps the previous frame's features "
                      "wherever the mask network trusts them, 0 gives the per-frame result", minimum=0.0, maximum=1.0))

    def __init__(self, model: str = DEFAULT_MODEL, mask_model: str = DEFAULT_MASK, traceable: float = 1.0):
        super().__init__()
        self.net, meta, _ = trained_network(model, "johnson_transform")
        self.mask_net = mask_network(mask_model)
        self.split = johnson_split(self.net)
        self.traceable = float(traceable)
        styles = tuple(json.loads(meta.get("styles", "[]"))) or (Path(str(model)).stem,)
        self.capabilities = dataclasses.replace(type(self).capabilities, fixed_styles=styles)

    def _encode_style(self, *, images, refs, weights):
        return None   # the style lives in the network's weights

    def _stylize(self, *, content, code, strength, mask, state):
        features = self.split.encode(content)
        if state is not None:
            features = self._composite(content, features, state)
        return blend_strength(self.split.decode(features), content, strength)

    def _composite(self, frame: torch.Tensor, features: torch.Tensor, state) -> torch.Tensor:
        """F^o_t for this frame of the stream, remembered for the next; F_t on a stream's first frame (or after a
        cut or a size change, when the state has dropped ``data``)."""
        memory = state.data.get(MEMORY)
        motion = state.motion() if memory is not None else None
        composite = features
        if motion is not None and memory[0].shape == features.shape:
            flow = flow_on_grid(motion.flow.to(frame), tuple(frame.shape[-2:]), self.stride)
            composite, _ = coherent_step(self.mask_net, features, frame, memory[0], memory[1], flow, self.stride,
                                         self.traceable)
        state.data[MEMORY] = (composite.detach(), frame.detach())
        return composite
