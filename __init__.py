"""Brushstream: neural style transfer for stills, video and live streams.

This folder is both the pip package ``brushstream`` and a ComfyUI custom node pack. Importing it
loads no weights and starts nothing; ComfyUI calls ``comfy_entrypoint`` (the V3 node API), Python users call
``brushstream.stylize(...)``, ``brushstream.load(...)``, ``brushstream.load_image(...)``,
``brushstream.stylize_video(...)`` and, for hosts, the frame iterator ``brushstream.stylize_frames(...)``.
"""
from .core.api import load, stylize
from .core.errors import BrushstreamError
from .core.io.image import load_image, save_image
from .core.methods import StyleSpec, available
from .core.video_stylize import stylize_frames, stylize_video
from .nodes import comfy_entrypoint

__version__ = "0.1.0"
__all__ = ["load", "stylize", "stylize_video", "stylize_frames", "load_image", "save_image", "available", "StyleSpec",
           "BrushstreamError",
           "comfy_entrypoint"]
