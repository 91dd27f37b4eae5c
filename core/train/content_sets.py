"""Content sets: the training photos as a manifest entry, so `brushstream train` works on a fresh install. Style
sets: training paintings published the same way (``--style-set``).

A content set is one uncompressed tar of JPEG photos with a weights-manifest entry (method ``content_set``):
sha256, size, licence and its place on the Hugging Face Hub. It is found like any weight file (the
BRUSHSTREAM_WEIGHTS_DIR folder, the Hugging Face cache, then the Hub through huggingface-hub), verified, and
unpacked once into Brushstream's cache, under a folder named by its sha256, through a temporary folder and a
rename, so a killed unpack leaves nothing that looks finished. ``pack`` writes the tar byte for byte the same
from the same photos (sorted names, zero times and owners), so an entry's recipe reproduces its sha256. A style
set (method ``style_set``) is the same kind of tar holding paintings, resolved, verified and unpacked by the same
code into its own cache folder (``style_sets``).
"""
from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrushstreamError
from ..hub.weights import load_manifest, resolve
from ..io.atomic import atomic_path
from ..io.image import list_images

DEFAULT_CONTENT_SET = "bsds500_train_320"
CACHE_ENV = "BRUSHSTREAM_CACHE"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "brushstream")


def pack(folder: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the photos directly inside ``folder`` as a reproducible tar (written atomically)."""
    photos = [p for p in list_images(folder) if p.suffix.lower() in PHOTO_SUFFIXES]
    if not photos:
        raise BrushstreamError(f"{folder}: holds no JPEG or PNG photos to pack")
    out = Path(out)
    with atomic_path(out) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for photo in photos:
            data = photo.read_bytes()
            info = tarfile.TarInfo(photo.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out


@dataclass(frozen=True)
class _Kind:
    """What sets of one manifest method are called, where they are cached and what a user gives instead."""
    method: str       # the manifest entry's method
    noun: str         # in messages: "content set"
    flag: str         # the option that names one
    cache: str        # the folder under cache_root()
    unfetched: str    # the line when no verified copy can be had; {name} and {why} are filled in


CONTENT_SETS = _Kind("content_set", "content set", "--content-set", "content_sets",
                     "no training photos: give --content-dir FOLDER, or let Brushstream fetch the content set {name} "
                     "({why})")
STYLE_SETS = _Kind("style_set", "style set", "--style-set", "style_sets",
                   "--style-set {name}: no verified copy of the style set ({why}); go online, or give --style-dir "
                   "FOLDER instead")


def _unpack(archive: Path, target: Path, kind: _Kind = CONTENT_SETS) -> None:
    """Regular photo files only, flat names only (a tar is untrusted input: no paths, links or devices)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                name = member.name
                if not (member.isfile() and "/" not in name and not name.startswith(".")
                        and Path(name).suffix.lower() in PHOTO_SUFFIXES):
                    raise BrushstreamError(f"{archive}: {name!r} is not a photo file of a {kind.noun}")
                with tar.extractfile(member) as src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        try:
            os.rename(staging, target)
        except OSError:   # another process unpacked it first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _set_folder(name: str, kind: _Kind) -> Path:
    """The unpacked, verified files of the set ``name`` of ``kind`` (fetched and unpacked on first use)."""
    manifest = load_manifest()
    entry = manifest.get(name)
    if entry is None or entry.method != kind.method:
        known = ", ".join(n for n, e in manifest.items() if e.method == kind.method) or "none"
        raise BrushstreamError(f"{kind.flag} {name}: no such {kind.noun} in the manifest (known: {known})")
    target = cache_root() / kind.cache / f"{name}-{entry.sha256[:16]}"
    if target.is_dir():
        return target
    try:
        archive = resolve(name, manifest=manifest)
    except BrushstreamError as exc:
        raise BrushstreamError(kind.unfetched.format(name=name, why=exc)) from None
    try:
        _unpack(archive, target, kind)
    except (tarfile.TarError, OSError) as exc:
        raise BrushstreamError(f"{archive}: unreadable {kind.noun} ({type(exc).__name__}: {exc})") from None
    return target


def content_set_folder(name: str) -> Path:
    """The unpacked, verified photos of the content set ``name`` (fetched and unpacked on first use)."""
    return _set_folder(name, CONTENT_SETS)


def style_set_folder(name: str) -> Path:
    """The unpacked, verified paintings of the style set ``name`` (fetched and unpacked on first use)."""
    return _set_folder(name, STYLE_SETS)
