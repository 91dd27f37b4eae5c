"""Still images in and out: decoding with clear errors, tensor layout, alpha and bit depth, atomic writes.

Inside core an image is float (1, 3, H, W) in [0, 1]. Grayscale, palette, alpha and 16-bit files are
accepted and converted (the alpha channel travels beside the image so it can be written back);
files that cannot be decoded completely are refused with one line naming the file.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import BrushstreamError

# Decoding more than this would need gigabytes before any network runs; refuse before decoding.
MAX_DECODE_PIXELS = 250_000_000
WRITE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}


READ_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, sorted; an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BrushstreamError(f"{folder}: not a directory of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in READ_SUFFIXES)
    if not files:
        raise BrushstreamError(f"{folder}: holds no images ({', '.join(sorted(READ_SUFFIXES))})")
    return files


@dataclass
class LoadedImage:
    image: torch.Tensor              # (1, 3, H, W) float32 in [0, 1]
    alpha: torch.Tensor | None       # (1, 1, H, W) or None
    path: Path
    bit_depth: int                   # 8 or 16: what the file held
    source_mode: str                 # the file's own pixel mode, e.g. "RGB", "L", "P", "I;16"

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.image.shape[-2:])


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if len(head) >= 26 and head[:8] == b"\x89PNG\r\n\x1a\n" else 8


def _decode_16bit_png(path: Path) -> np.ndarray:
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise BrushstreamError(f"{path}: could not decode the 16-bit PNG data")
    if data.ndim == 3:  # OpenCV gives BGR(A)
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2RGBA if data.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    else:
        data = data[..., None]
    return data.astype(np.float32) / 65535.0


def _pil_to_float(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float HxWxC (C = 1..4) in [0, 1], keeping alpha where the file has it."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float32)
        return (arr / (65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0))[..., None]
    if mode == "F":
        return np.clip(np.asarray(im, dtype=np.float32), 0, 1)[..., None]
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode == "PA":
        im = im.convert("RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV ...
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr if arr.ndim == 3 else arr[..., None]


@contextlib.contextmanager
def _quiet_bomb_warning():
    """Pillow's decompression-bomb warning is replaced by our own size limit (MAX_DECODE_PIXELS)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Decode a still image file completely, or raise one line naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise BrushstreamError(f"{path}: no such file")
    if path.is_dir():
        raise BrushstreamError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise BrushstreamError(f"{path}: empty file (0 bytes)")
    try:
        with _quiet_bomb_warning(), Image.open(path) as im:
            fmt = im.format
            if im.width * im.height > MAX_DECODE_PIXELS:
                raise BrushstreamError(
                    f"{path}: {im.width}x{im.height} px is too large to decode (limit {MAX_DECODE_PIXELS / 1e6:.0f} MP)")
            im.load()  # decode everything now: a truncated file fails here, not half-way through a model
            source_mode = im.mode
            im = ImageOps.exif_transpose(im)
            if fmt == "PNG" and _png_bit_depth(path) == 16:
                arr, depth = _decode_16bit_png(path), 16
            else:
                arr, depth = _pil_to_float(im), 16 if im.mode.startswith("I") else 8
    except BrushstreamError:
        raise
    except UnidentifiedImageError:
        raise BrushstreamError(f"{path}: not a readable image (unknown format or corrupt header)") from None
    except Image.DecompressionBombError:
        raise BrushstreamError(f"{path}: image too large to decode safely") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise BrushstreamError(f"{path}: truncated or corrupt image data ({exc})") from None
    channels = arr.shape[2]
    rgb = arr[..., :3] if channels >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    alpha = arr[..., -1:] if channels in (2, 4) else None
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0)
    alpha_t = None if alpha is None else torch.from_numpy(np.ascontiguousarray(alpha)).permute(2, 0, 1).unsqueeze(0)
    return LoadedImage(image.clamp(0, 1), alpha_t, path, depth, source_mode)


def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output name we cannot write before any work is done."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise BrushstreamError(
            f"{path}: cannot write {path.suffix or 'a file without extension'}; use one of {', '.join(sorted(WRITE_SUFFIXES))}")
    if path.exists() and path.is_dir():
        raise BrushstreamError(f"{path}: is a directory")
    return path


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1|3, H, W) or (1, 3, H, W) float -> HxWxC uint8."""
    if image.dim() == 4:
        image = image[0]
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def save_image(image: torch.Tensor, path: str | os.PathLike, alpha: torch.Tensor | None = None,
               bit_depth: int = 8, quality: int = 95) -> Path:
    """Write atomically (temp file in the same folder, then rename): a reader never sees half a file."""
    path = check_output_path(path)
    suffix = path.suffix.lower()
    if image.dim() == 4:
        image = image[0]
    if alpha is not None and suffix in ALPHA_SUFFIXES:
        image = torch.cat([image, alpha.reshape(1, *image.shape[-2:]).to(image)], dim=0)
    try:
        with atomic_path(path) as tmp:
            if bit_depth == 16 and suffix in (".png", ".tif", ".tiff"):
                arr = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 65535.0 + 0.5).astype(np.uint16)
                arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA if arr.shape[2] == 4 else cv2.COLOR_RGB2BGR)
                if not cv2.imwrite(tmp, arr):
                    raise BrushstreamError(f"{path}: could not write the image")
            else:
                im = Image.fromarray(to_uint8(image), "RGBA" if image.shape[0] == 4 else "RGB")
                options = {"quality": quality} if suffix in (".jpg", ".jpeg", ".webp") else {}
                im.save(tmp, format=Image.registered_extensions()[suffix], **options)
    except OSError as exc:
        raise BrushstreamError(f"{path}: could not write the image ({exc.strerror or exc})") from None
    return path
