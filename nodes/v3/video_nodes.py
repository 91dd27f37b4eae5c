"""Stylize Frames (an IMAGE batch of consecutive frames, its temporal state carried across the batch and, by stream
id, across executions) and Stylize Video (ComfyUI's VIDEO: frames stylized, frame rate and audio kept)."""
from __future__ import annotations

from comfy_api.latest import InputImpl, Types, io

from ...core.methods import STYLIZE_OPTIONS
from ..video import stylize_frames
from .widgets import StyleCodeType, StyleModel, option_input

CATEGORY = "Brushstream/video"
METHOD_DEFAULT = -1.0


def _temporal_defaults() -> str:
    """Each method's declared default blend, read from the registry (never a hand-kept list)."""
    from ...core.methods import available

    image = ", ".join(f"{n} {c.temporal_strength:g}" for n, c in available().items() if not c.capabilities.video_native)
    native = ", ".join(n for n, c in available().items() if c.capabilities.video_native)
    return f"{image}; {native}: its own mechanism, no blend"


def _schema(node_id: str, display_name: str, description: str, media_in, media_out) -> io.Schema:
    """The two video nodes differ only in what carries the frames (an IMAGE batch or a VIDEO)."""
    return io.Schema(
        node_id=node_id, display_name=display_name, category=CATEGORY, description=description,
        inputs=[StyleModel.Input("model"), StyleCodeType.Input("style"), media_in,
                *[option_input(o) for o in STYLIZE_OPTIONS],
                io.Float.Input("temporal_strength", default=METHOD_DEFAULT, min=METHOD_DEFAULT, max=1.0, step=0.05,
                               tooltip="flow-guided blend of the previous stylized frame (image methods); -1: the "
                                       f"method's default ({_temporal_defaults()})"),
                io.String.Input("stream_id", default="", optional=True,
                                tooltip="carry the temporal state across runs under this name (a long clip in "
                                        "batches); empty: each run starts fresh"),
                io.Boolean.Input("reset", default=False, optional=True, tooltip="start the named stream afresh")],
        outputs=[media_out])


def _run(model, style, frames, temporal_strength, stream_id, reset, settings):
    strength = None if temporal_strength < 0 else temporal_strength
    return stylize_frames(model, style, frames, stream_id=stream_id, temporal_strength=strength, reset=reset,
                          **settings)


class StylizeFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return _schema("BrushstreamStylizeFrames", "Stylize Frames",
                       "Stylize a batch of consecutive frames in order, through the method's temporal state.",
                       io.Image.Input("frames"), io.Image.Output(display_name="frames"))

    @classmethod
    def execute(cls, model, style, frames, temporal_strength=METHOD_DEFAULT, stream_id="", reset=False, **settings):
        return io.NodeOutput(_run(model, style, frames, temporal_strength, stream_id, reset, settings))


class StylizeVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return _schema("BrushstreamStylizeVideo", "Stylize Video",
                       "Stylize every frame of a VIDEO through the temporal state; frame rate and audio are kept.",
                       io.Video.Input("video"), io.Video.Output(display_name="video"))

    @classmethod
    def execute(cls, model, style, video, temporal_strength=METHOD_DEFAULT, stream_id="", reset=False, **settings):
        parts = video.get_components()
        frames = _run(model, style, parts.images, temporal_strength, stream_id, reset, settings)
        return io.NodeOutput(InputImpl.VideoFromComponents(
            Types.VideoComponents(images=frames, audio=parts.audio, frame_rate=parts.frame_rate)))
