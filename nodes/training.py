"""The logic behind the Train Style Model node (no ComfyUI imports): a registered recipe run by core's training loop
into the pack's model folder, with ComfyUI's progress bar (a preview every few steps), its interrupt (which keeps
the last checkpoint) and resume.

The style images are written beside the model as PNGs under a name-derived folder, so the recipe (which records
their paths) is the same on every resume of the same model name.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..core.errors import BrushstreamError
from ..core.io.image import save_image
from ..core.methods import available
from ..core.train.catalogue import recipes
from ..core.train.loop import TrainingStopped, default_checkpoint, fit
from . import host
from .convert import to_comfy, to_core

NAME = re.compile(r"^[\w.-]{1,80}$")


def style_recipes() -> list[str]:
    """Recipes whose result a style method loads (components such as decoders and flow networks stay in the CLI)."""
    methods = available()
    return sorted(n for n, r in recipes().items() if r.method in methods and n == r.method)


def model_paths(name: str, folder: Path) -> tuple[Path, Path, Path]:
    """The model file, its checkpoint and its style-image folder for a model ``name``."""
    if not NAME.match(name or ""):
        raise BrushstreamError(f"model name {name!r}: use 1-80 letters, digits, '_', '-' or '.'")
    out = folder / f"{name}.safetensors"
    return out, default_checkpoint(out), folder / f"{name}.styles"


def _write_styles(styles: torch.Tensor, folder: Path, resume: bool) -> tuple[str, ...]:
    images = to_core(styles).split(1)
    paths = tuple(str(folder / f"style_{i}.png") for i in range(len(images)))
    if resume and all(Path(p).is_file() for p in paths):
        return paths          # the files the checkpoint's recipe names (a resumed run must not change them)
    folder.mkdir(parents=True, exist_ok=True)
    for image, path in zip(images, paths):
        save_image(image, path)
    return paths


def train_style_model(recipe_name: str, styles: torch.Tensor, name: str, *, steps: int, size: int = 0,
                      content_dir: str = "", resume: bool = True, preview_every: int = 25, minutes: float = 0.0,
                      folder: Path | None = None) -> tuple[str, torch.Tensor | None]:
    """Train (or continue) model ``name`` and return (its file name in the model folder, the last preview IMAGE).
    ``minutes`` > 0 fits the run into that wall-clock budget (``steps`` then caps the steps).

    An existing checkpoint of the same name is continued when ``resume`` is on (a finished model with more
    ``steps`` asked for continues too); otherwise an existing model or checkpoint is refused, never overwritten.
    """
    table = recipes()
    if recipe_name not in style_recipes():
        raise BrushstreamError(f"unknown style recipe {recipe_name!r}; choose from {', '.join(style_recipes())}")
    folder = folder or host.model_folder() or host.output_dir()
    out, ckpt, style_dir = model_paths(name, Path(folder))
    if not resume and (out.exists() or ckpt.exists()):
        raise BrushstreamError(f"{out.name} already exists in {folder}; turn resume on to continue it, "
                               f"or choose another name")
    cls = table[recipe_name]
    values = {"steps": int(steps), "content_dir": content_dir.strip(),
              "style": _write_styles(styles, style_dir, resume and ckpt.exists())}
    if size:
        values["size"] = int(size)
    if values["content_dir"] and not Path(values["content_dir"]).is_dir():
        raise BrushstreamError(f"{values['content_dir']}: no such folder of training photos")
    recipe = cls(**values)
    bar = host.Progress(steps)
    last = {"preview": None}

    def on_step(progress) -> bool:
        if progress.preview is not None:
            last["preview"] = progress.preview[:1].detach().float().cpu()
        bar.update(progress.step, last["preview"] if progress.preview is not None else None, total=progress.steps)
        return not host.interrupted()   # False: the loop writes its checkpoint and stops
    device = "cuda" if host.torch_device().type == "cuda" else "cpu"
    with torch.inference_mode(False):
        try:
            fit(recipe, out, resume=resume and ckpt.exists(), device=device, checkpoint_every=max(10, steps // 10),
                minutes=minutes or None, max_steps=int(steps) if minutes else None,
                preview_every=preview_every, preview_count=1, callback=on_step, progress=False, loss_curve=False)
        except TrainingStopped:
            host.check_interrupt()   # ComfyUI's own interrupt exception: the run shows as interrupted
            raise
    return out.name, (None if last["preview"] is None else to_comfy(last["preview"]))
