"""The logic behind the load / encode / stylize nodes, free of ComfyUI's node API so it runs and is tested alone.

A loaded model is a fresh module built by the registry (weights verified and shared, never the module); the
nodes move it to ComfyUI's device for a run and back afterwards. Methods that optimise pixels need autograd,
which ComfyUI's inference_mode forbids: they are built, encoded and run outside it, on clones of the inputs.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..core.errors import BrushstreamError
from ..core.hub.weights import load_manifest
from ..core.methods import StyleCode, StyleMethod, available, build, get
from ..core.methods.style_spec import parse_style_weights
from . import host
from .convert import mask_to_core, to_comfy, to_core

TILE = 512              # tile side when a whole image does not fit in memory
TILE_OVERLAP = 64


@dataclass
class LoadedModel:
    """What the loader node outputs: the built method, under its registry name."""
    method: str
    module: StyleMethod

    @property
    def optimises(self) -> bool:
        return self.module.capabilities.optimisation


def autograd_if(needed: bool):
    """Leave ComfyUI's inference_mode where autograd is needed (see the module docstring); a no-op otherwise."""
    return torch.inference_mode(False) if needed else contextlib.nullcontext()


def _detached_copy(x):
    """A normal (not inference) tensor copy; used on inputs made under inference_mode."""
    return x.clone() if isinstance(x, torch.Tensor) else x


def weight_choices(method: str, option: str) -> list[str]:
    """The menu for an option that names a weight file: the declared default first, then the manifest's files for
    this method in the role the option declares (Option.weights), then the files in models/nst_models."""
    opt = next(o for o in available()[method].options if o.name == option)
    names = sorted(e.name for e in load_manifest().values()
                   if method in e.method.split(",") and e.role == opt.weights)
    return list(dict.fromkeys([str(opt.default), *names, *host.model_files()]))


def _weight_options(method: str) -> list[str]:
    """The method's options that name weight files, the model first, then a decoder before an encoder, then a mask."""
    order = {"model": 0, "decoder": 1, "encoder": 2, "mask": 3}
    return [o.name for o in sorted((o for o in get(method).options if o.weights), key=lambda o: order[o.weights])]


def _weight_source(text: str) -> str:
    """A menu entry -> what core.hub.weights.resolve takes: a model-folder file becomes its full path."""
    return host.model_file_path(text) or text


def load_model(method: str, options: dict, source: str = "") -> LoadedModel:
    """Build ``method`` with its declared ``options``; ``source`` (a manifest name, hf://... reference or path)
    overrides the method's first weight option."""
    weight_options = _weight_options(method)
    options = {k: (_weight_source(v) if k in weight_options and isinstance(v, str) else v) for k, v in options.items()}
    source = (source or "").strip()
    if source:
        target = weight_options[0] if weight_options else None
        if target is None:
            raise BrushstreamError(f"{method} loads no weight file, so it takes no weights source ({source!r})")
        options[target] = _weight_source(source)
    with autograd_if(True):   # a module built here must be usable by autograd later (optimisation methods)
        module = build(method, progress=False, **options)
    return LoadedModel(method, module.to(host.offload_device()))


def parse_trained_style(text: str):
    """'udnie', '2', or a blend 'udnie:0.7, 0:0.3' -> what StyleSpec takes (name, index or {style: weight})."""
    text = (text or "").strip()
    if ":" not in text:
        return int(text) if text.isdigit() else text
    blend = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.rpartition(":")
        try:
            blend[int(name) if name.strip().isdigit() else name.strip()] = float(weight)
        except ValueError:
            raise BrushstreamError(f"a style blend is 'name:weight, name:weight', got {text!r}") from None
    return blend


def encode_style(model: LoadedModel, images: list[torch.Tensor], weights_text: str = "",
                 trained_style: str = "") -> StyleCode:
    """A style code from IMAGE inputs (each image of each batch is one style) or a trained style's name/index/
    blend. With two styles the code also serves a spatial mask (first: where the mask is 1)."""
    styles = [s for batch in images if batch is not None for s in to_core(batch).split(1)]
    module = model.module
    with autograd_if(model.optimises):
        if styles:
            weights = parse_style_weights(weights_text, len(styles))
            # Encoded on ComfyUI's device like the stylizing (a VGG pass per style), the code kept on the offload
            # device: a method moves a code to wherever it runs.
            with host.on_device(module, styles[0]) as device:
                code = module.encode_style([_detached_copy(s).to(device) for s in styles], weights)
            return code.to(host.offload_device())
        if not (trained_style or "").strip():
            raise BrushstreamError(f"{model.method} needs a style: connect a style IMAGE"
                                   + (" or type a trained style" if module.capabilities.fixed_styles else ""))
        return module.encode_style(parse_trained_style(trained_style))


def _tiles(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def stylize_tiled(run, image: torch.Tensor, tile: int = TILE, overlap: int = TILE_OVERLAP) -> torch.Tensor:
    """``run`` over overlapping tiles of a (1, 3, H, W) image, blended with linear ramps across the overlaps:
    the fallback when a whole image does not fit in memory."""
    _, _, h, w = image.shape
    out = torch.zeros_like(image)
    weight = torch.zeros_like(image[:, :1])
    for top in _tiles(h, tile, overlap):
        for left in _tiles(w, tile, overlap):
            patch = image[..., top:top + tile, left:left + tile]
            y = run(patch).to(out)
            ph, pw = patch.shape[-2:]
            ramp_y = torch.ones(ph)
            ramp_x = torch.ones(pw)
            n = min(overlap, ph // 2, pw // 2)
            if n > 0:
                ramp = torch.linspace(1.0 / (n + 1), 1.0, n)
                if top > 0:
                    ramp_y[:n] = ramp
                if top + ph < h:
                    ramp_y[-n:] = ramp.flip(0)
                if left > 0:
                    ramp_x[:n] = ramp
                if left + pw < w:
                    ramp_x[-n:] = ramp.flip(0)
            wgt = (ramp_y[:, None] * ramp_x[None, :]).to(out)[None, None]
            out[..., top:top + ph, left:left + pw] += y * wgt
            weight[..., top:top + ph, left:left + pw] += wgt
    return out / weight


def stylize_images(model: LoadedModel, code: StyleCode, image: torch.Tensor, *, mask: torch.Tensor | None = None,
                   **settings) -> torch.Tensor:
    """IMAGE batch in, IMAGE batch out: each image stylized on ComfyUI's device, with progress (a preview per
    image), an interrupt check per image (per step for optimisation methods), and tiles when an image does not
    fit in memory. ``settings``: strength, preserve_color, precision."""
    module = model.module
    content = to_core(image)
    masks = None if mask is None else mask_to_core(mask)
    if masks is not None and masks.shape[0] not in (1, content.shape[0]):
        raise BrushstreamError(f"{masks.shape[0]} masks for {content.shape[0]} images; give one, or one per image")
    steps = module.steps if model.optimises else 1   # progress units per image
    progress = host.Progress(content.shape[0] * steps)
    out = []
    try:
        with host.on_device(module, content) as device, autograd_if(model.optimises):
            for i in range(content.shape[0]):
                host.check_interrupt()
                frame = _detached_copy(content[i:i + 1]).to(device)
                m = None if masks is None else _detached_copy(masks[min(i, masks.shape[0] - 1)])[None].to(device)
                if model.optimises:   # per optimiser step: progress with a live preview, and interrupts
                    def on_step(done, total, x, base=i * steps):
                        host.check_interrupt()
                        progress.update(base + done * steps // max(total, 1), x if done % 5 == 0 else None)
                    module.on_step = on_step
                y = _stylize_one(module, code, frame, m, settings)
                out.append(y.cpu())
                progress.update((i + 1) * steps, y)
    finally:
        if model.optimises:
            module.on_step = None
    return to_comfy(torch.cat(out))


def _stylize_one(module: StyleMethod, code: StyleCode, frame: torch.Tensor, mask, settings: dict) -> torch.Tensor:
    try:
        return module.stylize(frame, code, mask=mask, **settings)
    except Exception as exc:
        if not host.is_out_of_memory(exc) or max(frame.shape[-2:]) <= TILE:
            raise
    if mask is not None:
        raise BrushstreamError("the image does not fit in memory and a masked image cannot be tiled; "
                               "make it smaller")
    host.empty_cache()   # out of memory: the same image again, a tile at a time

    def run(patch):
        host.check_interrupt()
        return module.stylize(patch, code, **settings)
    return stylize_tiled(run, frame)
