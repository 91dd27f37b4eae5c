"""The ComfyUI node pack (V3 node API). The logic lives in plain modules (stylize.py, analysis.py, host.py) that
run without ComfyUI; nodes/v3/ holds the node schemas and imports ComfyUI's API, so only ComfyUI loads it,
through ``comfy_entrypoint``."""


async def comfy_entrypoint():
    """ComfyUI's V3 entry point: the extension whose node list is read from the method registry."""
    from .v3.extension import BrushstreamExtension
    return BrushstreamExtension()


__all__ = ["comfy_entrypoint"]
