"""ReCoNet: Gao, Gu, Chen, Zhou & Dou, "ReCoNet: Real-time Coherent Video Style Transfer Network", ACCV 2018.
One trained network per style (core/nets/reconet.py, recipe core/train/reconet_recipe.py), stable on video
because it was trained with temporal losses: no flow at inference (video_native, temporal blend 0 by default).
On a stream the instance norms' statistics are measured on the first frame of each shot and folded into the
convolutions (``norm="stream"``, core/nets/fold.py): the stream state carries that folded copy, dropped on scene
cuts. Runs through core/runtime.py (ONNX Runtime or eager, picked by timing). Deviation: ``strength`` blends with
the photo in pixels (the paper has no strength control).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..nets.fold import FoldedStream
from ..nets.pretrained import trained_network
from ..nets.reconet import STRIDE
from ..runtime import RUNTIMES, FastRunner
from .base import Capabilities, StyleMethod, blend_strength
from .options import Option
from .registry import register

DEFAULT_MODEL = "reconet_rt_starry_night"
NORMS = ("stream", "frame")


@register
class ReCoNetMethod(StyleMethod):
    name = "reconet"
    summary = "ReCoNet, Gao et al. 2018: one trained network per style, stable on video, real time on a CPU"
    capabilities = Capabilities(arbitrary_style=False, style_blend=False, video_native=True, realtime=True,
                                trainable=True, trained_styles=True)
    # Per-shot folded norms save nothing measurable at 640x360 under ONNX Runtime (14.4 vs 14.7 ms a frame) but
    # refold on every cut, stalling one frame by ~0.2 s (a new ONNX session): live, per-frame norms win.
    live_options = {"norm": "frame"}
    stride = STRIDE
    archs = ("reconet",)
    batches = True
    options = (Option("model", "text", DEFAULT_MODEL, "trained ReCoNet network: manifest name or .safetensors file "
                      "(brushstream train reconet)", weights="model"),
               Option("runtime", "choice", "auto", "inference backend: auto times ONNX Runtime against PyTorch on "
                      "the first frame of each size and keeps the faster", choices=RUNTIMES),
               Option("threads", "int", 0, "CPU threads for inference (0: PyTorch's setting)", minimum=0),
               Option("norm", "choice", "stream", "instance-norm statistics on video: 'stream' measures them on the "
                      "first frame of each shot (again after a cut or a lighting change) and folds them into the "
                      "convolutions, about a quarter faster; 'frame' computes them on every frame, as trained. "
                      "Still images always use their own", choices=NORMS))

    def __init__(self, model: str = DEFAULT_MODEL, runtime: str = "auto", threads: int = 0, norm: str = "stream"):
        super().__init__()
        self.net, meta, _ = trained_network(model, "reconet")
        styles = tuple(json.loads(meta.get("styles", "[]"))) or (Path(str(model)).stem,)
        self.capabilities = dataclasses.replace(type(self).capabilities, fixed_styles=styles)
        self.runner = FastRunner(self.net, runtime, threads)
        self.norm = norm
        self.calibrations = 0   # folded copies made, over all streams (figures and tests)

    def _encode_style(self, *, images, refs, weights):
        return None   # the style lives in the network's weights

    def _stylize(self, *, content, code, strength, mask, state):
        runner = self.runner if state is None or self.norm == "frame" else self._stream_runner(content, state)
        return blend_strength(runner(content), content, strength)

    def _stream_runner(self, frame, state) -> FastRunner:
        """The stream's folded network, calibrated on this frame when the stream has none or the light moved.
        The state's ``data`` is cleared on scene cuts and size changes, which recalibrates too."""
        folded = state.data.get("reconet_folded")
        if folded is None or folded[0].drifted(frame):
            stream = FoldedStream(self.net, frame)
            # The backend timed for the last folded copy holds for the next: recalibrating does not re-time.
            previous = self.runner if folded is None else folded[1]
            folded = state.data["reconet_folded"] = (stream, previous.for_network(stream.net))
            self.calibrations += 1
        return folded[1]
