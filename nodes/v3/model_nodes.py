"""Load Style Model (one node per registered method, widgets from its declared options), Encode Style and
Stylize Image. A new method in core/methods appears here with no node code."""
from __future__ import annotations

from comfy_api.latest import io

from ...core.methods import STYLIZE_OPTIONS, available
from ..stylize import encode_style, load_model, stylize_images
from .widgets import StyleCodeType, StyleModel, option_input

CATEGORY = "Brushstream"


def _loader_options(method: str):
    """The options a loader shows (texture-synthesis-only settings stay in the CLI)."""
    return [o for o in available()[method].options if not o.texture_only]


def make_loader(method: str) -> type[io.ComfyNode]:
    """A Load Style Model node for ``method``."""
    cls = available()[method]
    options = _loader_options(method)
    names = tuple(o.name for o in options)
    takes_weights = any(o.name in ("model", "decoder", "encoder") for o in cls.options)

    def define_schema(node):
        inputs = [option_input(o, method) for o in options]
        if takes_weights:
            inputs.append(io.String.Input(
                "weights_source", default="", optional=True,
                tooltip="overrides the weights menu: a manifest name, an hf://OWNER/REPO/FILE.safetensors "
                        "reference (optionally #sha256=...), or a path; another project's .pth/.model/.onnx "
                        "style is converted on first use"))
        return io.Schema(node_id=f"BrushstreamLoad_{method}", display_name=f"Load Style Model ({method})",
                         category=f"{CATEGORY}/models", description=cls.summary, inputs=inputs,
                         outputs=[StyleModel.Output(display_name="model")])

    def execute(node, weights_source: str = "", **values):
        return io.NodeOutput(load_model(method, {k: values[k] for k in names if k in values}, weights_source))

    return type(f"BrushstreamLoad_{method}", (io.ComfyNode,), {
        "define_schema": classmethod(define_schema), "execute": classmethod(execute)})


class EncodeStyle(io.ComfyNode):
    """Style image(s) with weights, or a trained style's name/index/blend, encoded once for a model."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="BrushstreamEncodeStyle", display_name="Encode Style", category=CATEGORY,
            description="Encode a style once for a loaded model: style images (every image of a batch is one "
                        "style; two styles also drive a mask), or a style the model was trained on.",
            inputs=[
                StyleModel.Input("model"),
                io.Image.Input("style", optional=True, tooltip="style image(s); a batch is several styles"),
                io.Image.Input("style_2", optional=True,
                               tooltip="another style; with a mask, style paints where the mask is 1, style_2 "
                                       "elsewhere"),
                io.String.Input("style_weights", default="", optional=True,
                                tooltip="blend weights, one per style image, e.g. 0.7,0.3 (empty: equal)"),
                io.String.Input("trained_style", default="", optional=True,
                                tooltip="for trained-style models: a style's name or index, or a blend "
                                        "such as udnie:0.7,0:0.3"),
            ],
            outputs=[StyleCodeType.Output(display_name="style")])

    @classmethod
    def execute(cls, model, style=None, style_2=None, style_weights="", trained_style=""):
        return io.NodeOutput(encode_style(model, [style, style_2], style_weights, trained_style))


class StylizeImage(io.ComfyNode):
    """Every image of a batch stylized with an encoded style; a MASK splits two styles spatially."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="BrushstreamStylizeImage", display_name="Stylize Image", category=CATEGORY,
            description="Stylize every image of the batch; strength, colour preservation and an optional mask "
                        "(two styles: the first where the mask is 1).",
            inputs=[
                StyleModel.Input("model"),
                StyleCodeType.Input("style"),
                io.Image.Input("image"),
                *[option_input(o) for o in STYLIZE_OPTIONS],
                io.Mask.Input("mask", optional=True),
            ],
            outputs=[io.Image.Output(display_name="image")])

    @classmethod
    def execute(cls, model, style, image, mask=None, **settings):
        return io.NodeOutput(stylize_images(model, style, image, mask=mask, **settings))


def loaders() -> list[type[io.ComfyNode]]:
    return [make_loader(m) for m in available()]
