"""The pack as a ComfyUI V3 extension: its node list, read from the method registry at load time."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .. import host
from .model_nodes import EncodeStyle, StylizeImage, loaders
from .tool_nodes import EvaluateStylization, GatysOptimize, OpticalFlow
from .train_nodes import TrainStyleModel
from .video_nodes import StylizeFrames, StylizeVideo


class BrushstreamExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        host.register_model_folder()   # before the loaders' menus list it (this ComfyUI never calls on_load)
        return [*loaders(), EncodeStyle, StylizeImage, StylizeFrames, StylizeVideo, GatysOptimize, OpticalFlow,
                EvaluateStylization, TrainStyleModel]
