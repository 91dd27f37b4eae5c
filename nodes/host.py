"""What the nodes ask of ComfyUI: device, memory, progress with previews, interrupts and the model folder.

Every ComfyUI module is imported lazily, so the node logic runs (and is unit-tested) without ComfyUI: outside it
the device is the CPU, progress is silent and nothing interrupts.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

MODEL_FOLDER = "nst_models"          # the pack's own folder under ComfyUI's models/ (style_models is core's)
# Brushstream's own files, and other projects' style networks (converted on first use, core/foreign).
MODEL_EXTENSIONS = {".safetensors", ".pth", ".pt", ".model", ".onnx"}
PREVIEW_SIDE = 512                   # longer side of progress previews


def _comfy(module: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


def torch_device() -> torch.device:
    mm = _comfy("comfy.model_management")
    return mm.get_torch_device() if mm is not None else torch.device("cpu")


def offload_device() -> torch.device:
    mm = _comfy("comfy.model_management")
    return mm.unet_offload_device() if mm is not None else torch.device("cpu")


def module_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def free_memory(required: int, device: torch.device) -> None:
    """Ask ComfyUI to unload other models until ``required`` bytes are free on ``device`` (its convention before a
    model is moved there)."""
    mm = _comfy("comfy.model_management")
    if mm is not None and device.type != "cpu":
        mm.free_memory(required, device)


@contextlib.contextmanager
def on_device(module: torch.nn.Module, sample: torch.Tensor):
    """Run ``module`` on ComfyUI's device: room made first (its free_memory convention, sized by the module and a
    generous activation allowance for one ``sample`` image), moved back to the offload device and the cache
    emptied afterwards, even when the run fails or is interrupted. Yields the device."""
    device = torch_device()
    free_memory(module_bytes(module) + sample[:1].numel() * 4 * 64, device)
    module.to(device)
    try:
        yield device
    finally:
        module.to(offload_device())
        empty_cache()


def empty_cache() -> None:
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.soft_empty_cache()


def check_interrupt() -> None:
    """Raises ComfyUI's interrupt exception when the user pressed Cancel (or POST /interrupt)."""
    mm = _comfy("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def interrupted() -> bool:
    """Whether the user asked to stop, without raising (for loops that must save their state first)."""
    mm = _comfy("comfy.model_management")
    return bool(mm is not None and mm.processing_interrupted())


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", ())
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


class Progress:
    """ComfyUI's progress bar for the running node (with an optional preview image); silent outside ComfyUI."""

    def __init__(self, total: int):
        utils = _comfy("comfy.utils")
        self.total = max(1, int(total))
        self._bar = utils.ProgressBar(self.total) if utils is not None else None

    def update(self, done: int, preview: torch.Tensor | None = None, total: int | None = None) -> None:
        """``done`` of ``total`` (a new total when given: a time-budgeted run re-plans its steps); ``preview`` is a
        (1, 3, H, W) or (3, H, W) image in [0, 1]."""
        if total is not None:
            self.total = max(1, int(total), int(done))
        if self._bar is not None:
            self._bar.update_absolute(min(done, self.total), self.total,
                                      None if preview is None else ("JPEG", preview_image(preview), PREVIEW_SIDE))


def preview_image(image: torch.Tensor):
    """A PIL image of a (1, 3, H, W) / (3, H, W) tensor, for ComfyUI's live preview."""
    from PIL import Image

    x = image.detach().float().cpu()
    x = x[0] if x.dim() == 4 else x
    return Image.fromarray((x.clamp(0, 1).permute(1, 2, 0) * 255).round().byte().numpy())


# -- the model folder ---------------------------------------------------------------------------------------

def register_model_folder() -> Path | None:
    """models/nst_models, registered with ComfyUI's folder_paths (created if missing); None outside ComfyUI."""
    folder_paths = _comfy("folder_paths")
    if folder_paths is None:
        return None
    path = Path(folder_paths.models_dir) / MODEL_FOLDER
    path.mkdir(parents=True, exist_ok=True)
    folder_paths.add_model_folder_path(MODEL_FOLDER, str(path), is_default=True)
    folder_paths.folder_names_and_paths[MODEL_FOLDER][1].update(MODEL_EXTENSIONS)
    return path


def model_folder() -> Path | None:
    folder_paths = _comfy("folder_paths")
    if folder_paths is None:
        return None
    if MODEL_FOLDER not in folder_paths.folder_names_and_paths:
        return register_model_folder()
    return Path(folder_paths.get_folder_paths(MODEL_FOLDER)[0])


def model_files() -> list[str]:
    """The safetensors files in the model folder(s), as ComfyUI lists them."""
    folder_paths = _comfy("folder_paths")
    if folder_paths is None or model_folder() is None:
        return []
    return list(folder_paths.get_filename_list(MODEL_FOLDER))


def model_file_path(name: str) -> str | None:
    """The full path of a file listed by model_files(), else None."""
    folder_paths = _comfy("folder_paths")
    if folder_paths is None or model_folder() is None:
        return None
    return folder_paths.get_full_path(MODEL_FOLDER, name)


def output_dir() -> Path:
    folder_paths = _comfy("folder_paths")
    return Path(folder_paths.get_output_directory()) if folder_paths is not None else Path(os.getcwd())
