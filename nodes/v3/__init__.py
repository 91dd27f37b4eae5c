"""ComfyUI V3 node schemas: imported only by ComfyUI, through ``brushstream.nodes.comfy_entrypoint``."""
