"""ComfyUI nodes: thin adapters over core/ (IMAGE is (B, H, W, C) here and (B, C, H, W) inside core)."""
from .stylize_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
