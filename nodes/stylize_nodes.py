"""Stylize nodes made from the registry: one node per method (its declared options become node inputs),
plus the generic "Arbitrary Style" node with a method menu. A new method appears here with no node code.
"""
from __future__ import annotations

import torch

from ..core.methods import STYLIZE_OPTIONS, available, build
from ..core.methods.options import Option

CATEGORY = "Brushstream"
COMFY_INT_LIMIT = 0xFFFFFFFFFFFFFFFF   # ComfyUI's own bound for INT widgets (seeds)


def to_core(image: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE (B, H, W, C) -> core (B, 3, H, W); extra channels (alpha) are dropped."""
    return image[..., :3].permute(0, 3, 1, 2).contiguous().float()


def to_comfy(image: torch.Tensor) -> torch.Tensor:
    return image.permute(0, 2, 3, 1).contiguous().float().cpu()


def comfy_input(opt: Option) -> tuple:
    """A declared option as a ComfyUI input spec (widget type, default, range, tooltip)."""
    spec: dict = {"default": opt.default, "tooltip": opt.describe()}
    if opt.kind in ("int", "float"):
        if opt.minimum is not None:
            spec["min"] = opt.minimum
        spec["max"] = opt.maximum if opt.maximum is not None else COMFY_INT_LIMIT
        if opt.kind == "int":
            spec.update(min=int(spec.get("min", 0)), max=int(min(spec["max"], COMFY_INT_LIMIT)),
                        step=2 if opt.odd else 1)
            return "INT", spec
        spec["step"] = 0.01 if (opt.maximum or 0) <= 1 else 0.1
        return "FLOAT", spec
    if opt.kind == "bool":
        return "BOOLEAN", spec
    if opt.kind == "choice":
        return list(opt.choices), spec
    if opt.kind == "text":
        return "STRING", spec
    spec["default"] = ",".join(map(str, opt.default))   # floats / names: typed as "a,b"
    return "STRING", spec


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


def _trained_style(text: str):
    """A trained style typed in a node: its index ("0") or its name."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def _stylize_frames(model, image: torch.Tensor, style, settings: dict) -> torch.Tensor:
    """Every frame of ``image`` with ``style``: an IMAGE (all its frames blended equally) or a trained style's
    name or index."""
    code = model.encode_style(_trained_style(style) if isinstance(style, str) else to_core(style))
    content = to_core(image)
    bar = _progress(content.shape[0])
    out = []
    for i in range(content.shape[0]):
        _check_interrupt()
        out.append(model.stylize(content[i:i + 1], code, **settings))
        if bar is not None:
            bar.update(1)
    return to_comfy(torch.cat(out))


def _run(cls, method: str, options: dict, image, style, settings: dict) -> torch.Tensor:
    """Build and run ``method``. ComfyUI runs nodes under inference_mode; a method that optimises pixels needs
    autograd, and neither its parameters nor its inputs may be inference tensors, so it leaves that mode
    and works on clones of the inputs."""
    if not cls.capabilities.optimisation:
        return _stylize_frames(build(method, progress=False, **options), image, style, settings)
    with torch.inference_mode(False):
        style = style if isinstance(style, str) else style.clone()
        return _stylize_frames(build(method, progress=False, **options), image.clone(), style, settings)


def _common_inputs(cls) -> dict:
    caps = cls.capabilities
    skip = {"strength"} if not caps.strength else set()
    if caps.optimisation:
        skip.add("precision")   # optimising methods run in fp32 only
    return {o.name: comfy_input(o) for o in STYLIZE_OPTIONS if o.name not in skip}


def _node_options(cls) -> tuple:
    """The method's options a stylize node shows (texture-synthesis settings stay in the CLI)."""
    return tuple(o for o in cls.options if not o.texture_only)


def make_method_node(method: str) -> type:
    """A node class for one registered method, its inputs generated from the method's declared options."""
    cls = available()[method]
    option_names = tuple(o.name for o in _node_options(cls))
    common_names = tuple(_common_inputs(cls))

    caps = cls.capabilities
    trained = ("STRING", {"default": "0", "tooltip": "a style the model was trained on: its index or name"})

    def input_types(_node):
        if caps.arbitrary_style:
            style = ("IMAGE",)
        elif caps.fixed_styles:
            style = (list(caps.fixed_styles),)
        else:
            style = trained   # styles come with the model file, so they are typed, not listed
        required = {"image": ("IMAGE",), "style": style, **_common_inputs(cls)}
        required.update({o.name: comfy_input(o) for o in _node_options(cls)})
        types = {"required": required}
        if caps.arbitrary_style and caps.trained_styles:   # MSG-Net: a style image, or one it learned
            types["required"]["style"] = ("IMAGE", {"tooltip": "a new style image; leave unconnected to use trained_style"})
            types["optional"] = {"style": types["required"].pop("style"), "trained_style": trained}
        return types

    def stylize(self, image, style=None, trained_style="0", **inputs):
        settings = {k: inputs[k] for k in common_names if k in inputs}
        chosen = style if style is not None else trained_style
        return (_run(cls, method, {k: inputs[k] for k in option_names if k in inputs}, image, chosen, settings),)

    return type(f"BrushstreamStylize_{method}", (), {
        "CATEGORY": CATEGORY, "RETURN_TYPES": ("IMAGE",), "FUNCTION": "stylize", "DESCRIPTION": cls.summary,
        "INPUT_TYPES": classmethod(input_types), "stylize": stylize, "method": method})


class BrushstreamArbitraryStyle:
    """Stylize every frame of ``image`` with the style of ``style``; the method is a menu of the registry."""

    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "stylize"

    @classmethod
    def INPUT_TYPES(cls):
        methods = [n for n, c in available().items() if c.capabilities.arbitrary_style]
        return {"required": {
            "image": ("IMAGE",),
            "style": ("IMAGE",),
            "method": (methods, {"default": "adain"}),
            **{o.name: comfy_input(o) for o in STYLIZE_OPTIONS if o.name in ("strength", "preserve_color")},
        }}

    def stylize(self, image, style, method, strength, preserve_color):
        settings = {"strength": strength, "preserve_color": preserve_color}
        return (_run(available()[method], method, {}, image, style, settings),)


def _mappings() -> tuple[dict, dict]:
    classes = {"BrushstreamArbitraryStyle": BrushstreamArbitraryStyle}
    names = {"BrushstreamArbitraryStyle": "Brushstream: Arbitrary Style"}
    for method, cls in available().items():
        if cls.capabilities.arbitrary_style or cls.capabilities.fixed_styles or cls.capabilities.trained_styles:
            node = make_method_node(method)
            classes[node.__name__] = node
            names[node.__name__] = f"Brushstream: Stylize ({method})"
    return classes, names


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = _mappings()
