"""Gatys Optimize (its widgets from Gatys's declared options), Optical Flow and Evaluate Stylization."""
from __future__ import annotations

from comfy_api.latest import io, ui

from ...core.flow import flow_backends
from ...core.methods import STYLIZE_OPTIONS, available
from ..analysis import evaluate_stylization, optical_flow, report_text
from ..stylize import encode_style, load_model, stylize_images
from .widgets import option_input

CATEGORY = "Brushstream"
_GATYS = "gatys"


class GatysOptimize(io.ComfyNode):
    """Gatys et al.'s optimisation in one node, with a live preview every few steps."""

    @classmethod
    def define_schema(cls):
        options = [o for o in available()[_GATYS].options if not o.texture_only]
        stylize = [o for o in STYLIZE_OPTIONS if o.name != "precision"]   # optimisation runs in fp32
        return io.Schema(
            node_id="BrushstreamGatysOptimize", display_name="Gatys Optimize", category=CATEGORY,
            description=available()[_GATYS].summary,
            inputs=[io.Image.Input("image"), io.Image.Input("style"),
                    *[option_input(o, _GATYS) for o in options], *[option_input(o) for o in stylize]],
            outputs=[io.Image.Output(display_name="image")])

    @classmethod
    def execute(cls, image, style, strength=1.0, preserve_color=False, **options):
        model = load_model(_GATYS, options)
        code = encode_style(model, [style])
        return io.NodeOutput(stylize_images(model, code, image, strength=strength, preserve_color=preserve_color))


class OpticalFlow(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="BrushstreamOpticalFlow", display_name="Optical Flow", category=f"{CATEGORY}/video",
            description="Flow between consecutive frames of a batch, as pictures (hue: direction, saturation: speed).",
            inputs=[io.Image.Input("frames", tooltip="two or more consecutive frames"),
                    io.Combo.Input("backend", options=flow_backends(), default="dis",
                                   tooltip="dis/farneback: OpenCV; flownet: a FlowNet trained with brushstream"),
                    io.String.Input("flownet_weights", default="", optional=True,
                                    tooltip="for flownet: a trained FlowNet (models/nst_models file, manifest name, "
                                            "hf:// reference or path)")],
            outputs=[io.Image.Output(display_name="flow")])

    @classmethod
    def execute(cls, frames, backend="dis", flownet_weights=""):
        return io.NodeOutput(optical_flow(frames, backend, flownet_weights))


class EvaluateStylization(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="BrushstreamEvaluate", display_name="Evaluate Stylization", category=CATEGORY,
            description="Content distance, Gram and mean/std style ratios (with a style image) and, for frame "
                        "batches, the warping error: the figures the project's benches report.",
            inputs=[io.Image.Input("content"), io.Image.Input("stylized"), io.Image.Input("style", optional=True),
                    io.Int.Input("size", default=384, min=64, max=2048, tooltip="longer side the metrics run at")],
            outputs=[io.String.Output(display_name="report")], is_output_node=True)

    @classmethod
    def execute(cls, content, stylized, style=None, size=384):
        text = report_text(evaluate_stylization(content, stylized, style, size))
        return io.NodeOutput(text, ui=ui.PreviewText(text))
