"""MicroAST: Wang et al., "MicroAST: Towards Super-Fast Ultra-Resolution Arbitrary Style Transfer", AAAI 2023.
Two micro encoders, a modulator and a micro decoder (core/nets/microast.py), no VGG. Two bundled files (1.9 MB each):
``microast_finetuned``, the default and every host's default method, is the authors' weights fine-tuned here for
paintings nobody trained on (core/train/microast_recipe.py: 97 paintings with augmented crops, the project's VGG16
losses; the eight held-out styles never seen); ``microast_official`` is the release (MIT) as published, converted by
tools/convert_microast.py, the baseline beside it.

The style code is the style's dual modulation signals (feature statistics and filter scale/shift at two levels),
computed once by the style encoder and the modulator; each frame costs the content encoder and the decoder only.
Several styles blend by the weighted mean of their signals (the project's choice: the paper shows no blending).

Strength (deviation; release: alpha blends features, ours: strength blends signals): strength s runs the decoder
with s * (style's signals) + (1 - s) * (the content's own signals, i.e. the content image put through the style encoder
and modulator as if it were the style). s = 1 is the release's output (alpha = 1); s = 0 is the content stylized with
itself, which gives the photo back closely (mean absolute difference 0.037 on assets/samples/chelsea.jpg at 256 px,
against 0.17 at s = 1) whatever the style. The release's alpha instead blends features, alpha * FeatMod(x) +
(1 - alpha) * x, before each of the decoder's two blocks, and keeps the filter modulation at full style. Measured with
its own code (chelsea, starry_night, 256 px): at alpha = 0.5 half of the second block's input is unnormalised decoder
features (channel means about 25 in magnitude, where the style statistics it was trained on are about 1.1), the block
sees about 6 times its trained scale and the picture saturates (up to 13.5 before clamping, mean 5.0); the release's
alpha is usable at 0 and 1 only. Strength below 1 costs one more style-encoder pass per frame.
"""
from __future__ import annotations

from ..errors import BrushstreamError
from ..hub import weights as weight_store
from ..nets.microast import STRIDE, MicroAST, Signals, mix_signals
from .base import PALETTE, WORK_SIZE, Capabilities, StyleMethod
from .options import Option
from .registry import register

DEFAULT_MODEL = "microast_finetuned"
ARCH = "microast"


def load_microast(source: str) -> MicroAST:
    """A new frozen MicroAST with the verified weights of ``source`` (manifest name or .safetensors file)."""
    tensors, meta = weight_store.load_state_dict(source)
    if meta.get("arch") != ARCH:
        raise BrushstreamError(f"{source}: holds a {meta.get('arch') or 'unknown'} network, not {ARCH}")
    net = MicroAST()
    own = net.state_dict()
    missing = sorted(set(own) - set(tensors))
    wrong = sorted(k for k in own if k in tensors and tensors[k].shape != own[k].shape)
    if missing or wrong:
        raise BrushstreamError(f"{source}: does not fit MicroAST (missing {missing[:3]}, wrong shape {wrong[:3]})")
    net.load_state_dict({k: tensors[k].float() for k in own})
    return net.eval().requires_grad_(False)


@register
class MicroASTMethod(StyleMethod):
    name = "microast"
    summary = ("MicroAST, Wang et al. 2023: micro encoders and a modulated micro decoder, any style, no VGG; "
               "fine-tuned here for paintings it never saw (--model microast_official: the release)")
    # Not live: on the 2-core CPU a 640x360 frame took 1.4-1.5 s (shared with a training run) and a 384 px photo at
    # best 0.19 s (bench/microast_parity.py), far from stream rates; it is an image and video method.
    capabilities = Capabilities(arbitrary_style=True)
    stride = STRIDE
    archs = (ARCH,)
    # Reflection padding in every layer: no zero-padded borders to hide, so no context margin.
    context = 0
    batches = True   # statistics are per image inside the batch; one style code serves them all
    options = (Option("model", "text", DEFAULT_MODEL, "MicroAST weights: manifest name or .safetensors file (the "
                      "four networks in one file, as tools/convert_microast.py writes them)", weights="model"),
               WORK_SIZE, PALETTE)

    def __init__(self, model: str = DEFAULT_MODEL, work_size: int = 0, palette: float = 0.0):
        super().__init__()
        self.net = load_microast(model)
        self.work_size, self.palette = work_size, palette

    def _encode_style(self, *, images, refs, weights) -> Signals:
        return mix_signals([self.net.signals(s) for s in images], weights)

    def _stylize(self, *, content, code, strength, mask, state):
        signals = code.data
        if strength < 1.0:   # toward the content's own signals (see the module docstring)
            signals = mix_signals([signals, self.net.signals(content)], (strength, 1.0 - strength))
        return self.net(content, signals)
