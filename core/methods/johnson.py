"""Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution", ECCV 2016.
One trained transform net per style (core/nets/johnson.py, recipe core/train/johnson_recipe.py). Deviation:
``strength`` blends the output with the photo in pixels (the paper has no strength control). Inference runs
through core/runtime.py (ONNX Runtime or eager, picked by timing), as ReCoNet's does; a network trained at the
real-time width (``brushstream train johnson --width 16``, the paper's is 32) runs several times faster.
Networks other projects share load too (core/foreign: pytorch/examples, rrmina, the ONNX model zoo), converted into
TransformNet, or, for an ONNX graph our modules cannot rebuild, run as that graph (core/runtime.py's GraphNet).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..hub import weights as weight_store
from ..nets.johnson import STRIDE
from ..nets.pretrained import trained_network
from ..runtime import GRAPH_ARCH, RUNTIMES, FastRunner
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "johnson_starry_night"


@register
class Johnson(StyleMethod):
    name = "johnson"
    summary = "Johnson et al. 2016: one trained network per style (johnson_rt_*: the real-time width)"
    # fixed_styles is filled per instance from the loaded file's metadata.
    capabilities = Capabilities(arbitrary_style=False, style_blend=False, realtime=True, trainable=True, trained_styles=True)
    stride = STRIDE
    archs = ("johnson_transform", GRAPH_ARCH)
    batches = True
    options = (Option("model", "text", DEFAULT_MODEL, "trained Johnson network: manifest name or .safetensors file "
                      "(brushstream train johnson)", weights="model"),
               Option("runtime", "choice", "auto", "inference backend: auto times ONNX Runtime against PyTorch on "
                      "the first image of each size and keeps the faster", choices=RUNTIMES),
               Option("threads", "int", 0, "CPU threads for inference (0: PyTorch's setting)", minimum=0))

    def __init__(self, model: str = DEFAULT_MODEL, runtime: str = "auto", threads: int = 0):
        super().__init__()
        graph = weight_store.read_metadata(weight_store.resolve(model)).get("arch") == GRAPH_ARCH
        self.net, meta, _ = trained_network(model, GRAPH_ARCH if graph else "johnson_transform")
        self.runner = FastRunner(self.net, runtime, threads)
        styles = tuple(json.loads(meta.get("styles", "[]"))) or (Path(str(model)).stem,)
        self.capabilities = dataclasses.replace(type(self).capabilities, fixed_styles=styles)

    def _encode_style(self, *, images, refs, weights):
        return None   # the style lives in the network's weights

    def _stylize(self, *, content, code, strength, mask, state):
        return blend_strength(self.runner(content), content, strength)
