"""Still images in and out: decoding with clear errors, tensor layout, alpha and bit depth, atomic writes.

Inside core an image is float (1, 3, H, W) in [0, 1]. Grayscale, palette, alpha and 16-bit files are
accepted and converted (the alpha channel travels beside the image so it can be written back);
files that cannot be decoded completely are refused with one line naming the file.
"""
from __future__ import annotations

import contextlib
import operator
import os
import stat
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import BrushstreamError
from ..ops.resize import long_side_size, resize_long_side, resize_to
from .atomic import atomic_path

# Decoding more than this would need gigabytes before any network runs; refuse before decoding.
MAX_DECODE_PIXELS = 250_000_000
DRAFT_MARGIN = 2   # reduced JPEG decoding stops at twice the size asked for
WRITE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
ALPHA_SUFFIXES = {".png", ".webp", ".tif", ".tiff"}


READ_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
# Formats whose extra frames are animation; a multi-page TIFF or an MPO (phone JPEG with a depth
# map) is a still image whose first frame is the picture.
ANIMATED_FORMATS = {"GIF", "PNG", "WEBP"}
_ORIENTATION = 0x0112  # EXIF tag


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder``, sorted; an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BrushstreamError(f"{folder}: not a directory of images")
    # Hidden files include macOS "._name.jpg" AppleDouble files, which are metadata, not images.
    files = sorted(p for p in folder.iterdir()
                   if not p.name.startswith(".") and p.is_file() and p.suffix.lower() in READ_SUFFIXES)
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
    file_size: tuple[int, int] | None = None  # the file's own (H, W) after EXIF orientation, before long_side

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


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise BrushstreamError(f"{path}: no such file") from None
    except OSError as exc:
        raise BrushstreamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BrushstreamError(f"{path}: is a directory, not an image")
    if st.st_size == 0:
        raise BrushstreamError(f"{path}: empty file (0 bytes)")


@contextlib.contextmanager
def _image_errors(path: Path):
    """Turn Pillow's many failure types into one line naming the file."""
    try:
        with _quiet_bomb_warning():
            yield
    except BrushstreamError:
        raise
    except UnidentifiedImageError:
        raise BrushstreamError(f"{path}: not a readable image (unknown format or corrupt header)") from None
    except PermissionError as exc:
        raise BrushstreamError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Image.DecompressionBombError as exc:
        raise BrushstreamError(f"{path}: image too large to decode safely ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise BrushstreamError(f"{path}: truncated or corrupt image data ({exc})") from None


def _png_late_exif(path: Path) -> bytes | None:
    """An eXIf chunk after the pixel data, found by skipping chunks (Pillow reads it only by decoding)."""
    with open(path, "rb") as f:
        f.seek(8)
        while len(head := f.read(8)) == 8:
            length, cid = struct.unpack(">I4s", head)
            if cid == b"eXIf":
                return f.read(length)
            if cid == b"IEND":
                break
            f.seek(length + 4, os.SEEK_CUR)  # data + CRC
    return None


def _orientation(im: Image.Image, path: Path) -> int:
    """The EXIF orientation (1-8) without decoding pixels."""
    if im.format == "PNG" and "exif" not in im.info:
        data = _png_late_exif(path)  # PngImageFile.getexif() would decode the whole image here
        if data is None:
            return 1
        exif = Image.Exif()
        exif.load(b"Exif\x00\x00" + data)
    else:
        exif = im.getexif()
    orientation = exif.get(_ORIENTATION, 1)
    return orientation if orientation in range(1, 9) else 1


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to HxWxC data (views, no copy); matches ImageOps.exif_transpose."""
    if orientation in (5, 7):
        arr = arr.swapaxes(0, 1) if orientation == 5 else arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    elif orientation in (2, 3, 4):
        arr = arr[:, ::-1] if orientation == 2 else arr[::-1, ::-1] if orientation == 3 else arr[::-1]
    return arr


def _positive_int(value, path: Path) -> int:
    try:
        number = operator.index(value)  # ints, numpy ints; not floats or strings
    except TypeError:
        number = 0
    if number < 1 or isinstance(value, bool):
        raise BrushstreamError(f"{path}: the long side must be a positive whole number of pixels, not {value!r}")
    return number


@dataclass
class _Plan:
    file_size: tuple[int, int]  # (H, W) after orientation
    target: tuple[int, int]     # (H, W) to hand back
    orientation: int


def _plan(im: Image.Image, path: Path, long_side: int | None, max_pixels: int | None) -> _Plan:
    """Every check that needs only the header; for JPEG also picks a reduced decode scale (im.draft)."""
    if im.format in ANIMATED_FORMATS and getattr(im, "n_frames", 1) > 1:
        raise BrushstreamError(f"{path}: animated image with {im.n_frames} frames; give a single still frame")
    orientation = _orientation(im, path)
    w, h = im.size
    if orientation >= 5:  # stored sideways
        w, h = h, w
    target = (h, w) if long_side is None else long_side_size(h, w, _positive_int(long_side, path))
    if max_pixels is not None and target[0] * target[1] > max_pixels:
        raise BrushstreamError(
            f"{path}: {target[1]}x{target[0]} px is over the memory budget of {pixel_count(max_pixels)}; "
            "use a smaller --size or raise BRUSHSTREAM_MAX_PIXELS")
    if target[0] < h or target[1] < w:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale. Asking for twice the target keeps an antialiased
        # resize after it (DCT scaling alone is visibly softer and shifts style statistics), and still
        # cuts a huge photo's decode by up to 64x.
        th, tw = target if orientation < 5 else target[::-1]
        im.draft(None, (DRAFT_MARGIN * tw, DRAFT_MARGIN * th))
    if im.width * im.height > MAX_DECODE_PIXELS:
        raise BrushstreamError(
            f"{path}: {im.width}x{im.height} px is too large to decode (limit {MAX_DECODE_PIXELS / 1e6:.0f} MP)")
    return _Plan((h, w), target, orientation)


def image_size(path: str | os.PathLike, *, long_side: int | None = None,
               max_pixels: int | None = None, decode: bool = False) -> tuple[int, int]:
    """The file's (H, W) after EXIF orientation.

    Runs every check load_image(path, long_side=..., max_pixels=...) can make without decoding
    (missing, directory, empty, unknown format, animated, too large, over the budget), so hosts
    can validate all inputs before loading any weights. ``decode`` also decodes the pixels (at the
    reduced JPEG scale load_image would use) and checks PNG chunk CRCs: truncation past the header
    shows only there.
    """
    path = Path(path)
    _check_file(path)
    with _image_errors(path), Image.open(path) as im:
        plan = _plan(im, path, long_side, max_pixels)
        if decode:
            _decode_fully(im, path)
        return plan.file_size


def _decode_fully(im: Image.Image, path: Path) -> None:
    if im.format == "PNG":
        with Image.open(path) as check:
            check.verify()  # chunk CRCs: decoding alone does not check them
    im.load()  # a truncated file fails here, not half-way through a model


def load_image(path: str | os.PathLike, *, long_side: int | None = None,
               max_pixels: int | None = None) -> LoadedImage:
    """Decode a still image file completely, or raise one line naming the file and the problem.

    ``long_side`` resizes (antialiased) so the longer side has that many pixels, exactly as
    resize_long_side would; a JPEG is decoded at a reduced scale first when that is enough.
    ``max_pixels`` refuses, before decoding, an image whose final H*W is larger.
    """
    path = Path(path)
    _check_file(path)
    with _image_errors(path), Image.open(path) as im:
        plan = _plan(im, path, long_side, max_pixels)
        fmt, source_mode = im.format, im.mode
        _decode_fully(im, path)
        if fmt == "PNG" and _png_bit_depth(path) == 16:
            arr, depth = _decode_16bit_png(path), 16
        else:
            arr, depth = _pil_to_float(im), 16 if im.mode.startswith("I") else 8
    arr = _orient(arr, plan.orientation)
    channels = arr.shape[2]
    rgb = arr[..., :3] if channels >= 3 else np.repeat(arr[..., :1], 3, axis=2)
    alpha = arr[..., -1:] if channels in (2, 4) else None
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).clamp(0, 1)
    alpha_t = None if alpha is None else torch.from_numpy(np.ascontiguousarray(alpha)).permute(2, 0, 1).unsqueeze(0)
    if long_side is not None:
        image, alpha_t = (_resize(t, plan, long_side) for t in (image, alpha_t))
    return LoadedImage(image, alpha_t, path, depth, source_mode, file_size=plan.file_size)


def _resize(x: torch.Tensor | None, plan: _Plan, long_side: int) -> torch.Tensor | None:
    if x is None:
        return None
    if tuple(x.shape[-2:]) == plan.file_size:
        return resize_long_side(x, long_side)  # bit-identical to resizing a full load
    return resize_to(x, plan.target).clamp(0, 1)  # from a reduced JPEG decode


def check_output_path(path: str | os.PathLike) -> Path:
    """Refuse an output name we cannot write before any work is done; creates nothing."""
    if str(path) == "-":
        raise BrushstreamError("-: writing to standard output is not supported; give a file name")
    path = Path(path)
    if path.suffix.lower() not in WRITE_SUFFIXES:
        raise BrushstreamError(
            f"{path}: cannot write {path.suffix or 'a file without extension'}; use one of {', '.join(sorted(WRITE_SUFFIXES))}")
    if os.path.isdir(path):  # os.path: False rather than an error under an unreadable folder
        raise BrushstreamError(f"{path}: is a directory")
    problem = _unwritable_reason(path)
    if problem:
        raise BrushstreamError(f"{path}: cannot write here ({problem})")
    return path


def _unwritable_reason(path: Path) -> str | None:
    """Why the file could not be created (the writer makes missing folders), or None."""
    folder = path.absolute().parent
    while not os.path.exists(folder) and folder != folder.parent:
        folder = folder.parent
    if not os.path.isdir(folder):
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK):
        readonly = hasattr(os, "statvfs") and os.statvfs(folder).f_flag & getattr(os, "ST_RDONLY", 1)
        return f"{folder} is on a read-only file system" if readonly else f"no permission to write in {folder}"
    return None


def from_uint8(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) float32 in [0, 1]: the inverse of ``to_uint8``."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def pixel_count(n: int) -> str:
    """A budget in words: "12.0 MP", or "1000 px" where megapixels would round to nothing."""
    return f"{n / 1e6:.1f} MP" if n >= 100_000 else f"{n} px"


# Resampling overshoots [0, 1] a little at sharp edges; an image in 0..255 or -1..1 is far outside this.
_UNIT_RANGE_SLACK = 0.25


def as_unit_range(image: torch.Tensor, role: str) -> torch.Tensor:
    """Images are float RGB in [0, 1]. uint8 (0..255) is converted, since it can only mean one thing; a float
    tensor in another range is refused, since guessing its convention would return a wrong picture."""
    if image.dtype == torch.uint8:
        return image.float().div(255.0)
    if not image.is_floating_point():
        raise BrushstreamError(f"{role} must be float in [0, 1] or uint8 in [0, 255], got {image.dtype}")
    if image.numel() and torch.isfinite(image).all():
        lo, hi = image.min().item(), image.max().item()
        if lo < -_UNIT_RANGE_SLACK or hi > 1 + _UNIT_RANGE_SLACK:
            hint = " (0..255: divide by 255)" if hi > 2 else " (-1..1: use (x + 1) / 2)" if lo < -0.5 else ""
            raise BrushstreamError(f"{role} values span [{lo:.3g}, {hi:.3g}]; images must be in [0, 1]{hint}")
    return image


def check_finite(image: torch.Tensor, target: str | os.PathLike) -> None:
    """A NaN pixel would be written as black without a word: refuse the whole result instead."""
    if image.is_floating_point() and not torch.isfinite(image).all():
        raise BrushstreamError(f"{target}: the result holds NaN or infinite values (damaged weights or an "
                               f"unstable setting); nothing written")


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(1|3, H, W) or (1, 3, H, W) float -> HxWxC uint8."""
    if image.dim() == 4:
        image = image[0]
    return (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def save_image(image: torch.Tensor, path: str | os.PathLike, alpha: torch.Tensor | None = None,
               bit_depth: int = 8, quality: int = 95) -> Path:
    """Write atomically (temp file in the same folder, then rename): a reader never sees half a file."""
    path = check_output_path(path)
    check_finite(image, path)
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


def fixed_crops(folder: str | os.PathLike, crop: int, count: int) -> torch.Tensor:
    """``count`` centre crops of the first photos of ``folder``: the same preview inputs every run."""
    out = []
    for path in list_images(folder)[:count]:
        x = load_image(path).image
        s = crop / min(x.shape[-2:])
        x = torch.nn.functional.interpolate(x, scale_factor=s, mode="bilinear", antialias=True, align_corners=False)
        y0, x0 = (x.shape[-2] - crop) // 2, (x.shape[-1] - crop) // 2
        out.append(x[..., y0:y0 + crop, x0:x0 + crop].clamp(0, 1))
    return torch.cat(out)
