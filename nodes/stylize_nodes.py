"""Arbitrary-style nodes: a style IMAGE input stylizes a content IMAGE batch with AdaIN, WCT or Style-Swap."""
from __future__ import annotations

import torch

from ..core.methods import build

ARBITRARY_METHODS = ["adain", "wct", "swap"]


def to_core(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE (B, H, W, C) -> core (B, 3, H, W); extra channels (alpha) are dropped."""
    return image[..., :3].permute(0, 3, 1, 2).contiguous().float()


def to_comfy(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 2, 3, 1).contiguous().cpu()


def _progress(total: int):
    """ComfyUI's progress bar when running inside ComfyUI, nothing otherwise."""
    try:
        import comfy.utils
        return comfy.utils.ProgressBar(total)
    except ImportError:
        return None


def _check_interrupt() -> None:
    try:
        import comfy.model_management
        comfy.model_management.throw_exception_if_processing_interrupted()
    except ImportError:
        pass


class BrushstreamArbitraryStyle:
    """Stylize every frame of ``image`` with the style of ``style`` (its first frame, or all blended)."""

    CATEGORY = "Brushstream"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "stylize"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE",),
            "style": ("IMAGE",),
            "method": (ARBITRARY_METHODS, {"default": "adain"}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05}),
            "preserve_color": ("BOOLEAN", {"default": False}),
        }}

    def stylize(self, image, style, method, strength, preserve_color):
        model = build(method)
        styles = to_core(style)
        code = model.encode_style([styles[i:i + 1] for i in range(styles.shape[0])])
        content = to_core(image)
        bar = _progress(content.shape[0])
        out = []
        for i in range(content.shape[0]):
            _check_interrupt()
            out.append(model.stylize(content[i:i + 1], code, strength=strength, preserve_color=preserve_color))
            if bar is not None:
                bar.update(1)
        return (to_comfy(torch.cat(out)),)


NODE_CLASS_MAPPINGS = {"BrushstreamArbitraryStyle": BrushstreamArbitraryStyle}
NODE_DISPLAY_NAME_MAPPINGS = {"BrushstreamArbitraryStyle": "Brushstream: Arbitrary Style (AdaIN / WCT / Style-Swap)"}
