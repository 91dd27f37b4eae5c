"""Weight files: manifest -> explicit path / bundled copy / $BRUSHSTREAM_WEIGHTS_DIR / HF cache / the Hub.

The only module that talks to the Hugging Face Hub (through huggingface-hub). Every file is verified
against the manifest's sha256 and size before it is used; a file that fails is an error, and a bad
download is removed from the cache so nothing corrupt is left behind. safetensors only: never pickle.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .atomic import atomic_path
from .errors import BrushstreamError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_PATH = PACKAGE_ROOT / "weights_manifest.json"
BUNDLED_DIR = PACKAGE_ROOT / "assets" / "weights"
ENV_DIR = "BRUSHSTREAM_WEIGHTS_DIR"
DEFAULT_HUB_REPO = "brushstream/brushstream-weights"
_ENTRY_KEYS = ("name", "method", "file", "sha256", "bytes", "licence", "attribution", "convention",
               "description", "bundled", "hub")


@dataclass(frozen=True)
class WeightEntry:
    name: str
    method: str
    file: str
    sha256: str
    bytes: int
    licence: str
    attribution: str
    convention: str
    hub_repo_id: str
    hub_filename: str
    hub_revision: str
    bundled: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def load_manifest(path: str | os.PathLike = MANIFEST_PATH) -> dict[str, WeightEntry]:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        entries = {}
        for e in raw["weights"]:
            hub = e.get("hub", {})
            entries[e["name"]] = WeightEntry(
                name=e["name"], method=e["method"], file=e["file"], sha256=e["sha256"].lower(),
                bytes=int(e["bytes"]), licence=e["licence"], attribution=e["attribution"],
                convention=e["convention"], hub_repo_id=hub.get("repo_id", DEFAULT_HUB_REPO),
                hub_filename=hub.get("filename", e["file"]), hub_revision=hub.get("revision", "main"),
                bundled=bool(e.get("bundled", False)), description=e.get("description", ""),
                extra={k: v for k, v in e.items() if k not in _ENTRY_KEYS})
        return entries
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BrushstreamError(f"{path}: unreadable weights manifest ({type(exc).__name__}: {exc})") from None


# -- hashing (cached per file state, so a 58 MB backbone is hashed once per process) --------------

@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def _check(entry: WeightEntry, path: Path) -> Path:
    size = path.stat().st_size
    if size != entry.bytes:
        raise BrushstreamError(f"{entry.name}: {path} is {size} bytes, expected {entry.bytes}; "
                               f"the file is truncated or corrupt")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise BrushstreamError(f"{entry.name}: sha256 mismatch for {path} (expected {entry.sha256[:12]}..., "
                               f"got {digest[:12]}...); the file is corrupt or tampered")
    return path


# -- resolution --------------------------------------------------------------------------------------

def _endpoint() -> str | None:
    # Read at call time, so HF_ENDPOINT set after import (tests, hosts) is honoured.
    return os.environ.get("HF_ENDPOINT") or None


def _cache_dir() -> str | None:
    return os.environ.get("HF_HUB_CACHE") or None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _remove_from_cache(path: Path) -> None:
    """Delete a cached snapshot file and the blob it links to (huggingface-hub's cache layout)."""
    blob = path.resolve()
    for p in {path, blob}:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _from_hub(entry: WeightEntry, local_files_only: bool) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        got = Path(hf_hub_download(entry.hub_repo_id, entry.hub_filename, revision=entry.hub_revision,
                                   local_files_only=local_files_only, endpoint=_endpoint(),
                                   cache_dir=_cache_dir()))
    except (LocalEntryNotFoundError, EntryNotFoundError, RepositoryNotFoundError):
        return None
    except OSError as exc:  # connection refused, DNS, timeouts: huggingface-hub raises OSError subclasses
        raise BrushstreamError(f"{entry.name}: download from the Hub failed ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:200]})") from None
    try:
        return _check(entry, got)
    except BrushstreamError:
        _remove_from_cache(got)
        raise


def resolve(name_or_path: str | os.PathLike, *, manifest: dict[str, WeightEntry] | None = None,
            local_files_only: bool | None = None) -> Path:
    """A verified local path for a manifest name, or a user's own safetensors file."""
    manifest = manifest if manifest is not None else load_manifest()
    text = str(name_or_path)
    if text not in manifest:
        path = Path(text).expanduser()
        if path.suffix == ".safetensors" or path.exists() or os.sep in text:
            if not path.is_file():
                raise BrushstreamError(f"{path}: no such weights file")
            # A copy of a file the manifest knows (same name) must match it; any other file is the
            # user's own and is checked by safetensors parsing when loaded.
            known = {e.file: e for e in manifest.values()}.get(path.name)
            return _check(known, path) if known is not None else path
        raise BrushstreamError(f"unknown weights {text!r}; known: {', '.join(sorted(manifest))}")
    entry = manifest[text]
    if entry.bundled and (BUNDLED_DIR / entry.file).is_file():
        return _check(entry, BUNDLED_DIR / entry.file)
    env_dir = os.environ.get(ENV_DIR)
    if env_dir and (Path(env_dir) / entry.file).is_file():
        return _check(entry, Path(env_dir) / entry.file)
    offline = _offline() if local_files_only is None else local_files_only
    for only_local in ((True,) if offline else (True, False)):
        found = _from_hub(entry, only_local)
        if found is not None:
            return found
    where = f"bundled assets, ${ENV_DIR}, the Hugging Face cache" + ("" if offline else f" and {entry.hub_repo_id} on the Hub")
    raise BrushstreamError(f"{entry.name}: {entry.file} not found in {where}; set {ENV_DIR} to a folder "
                           f"that holds it, or run `brushstream weights pull {entry.name}` online")


def load_state_dict(name_or_path: str | os.PathLike, **kw) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a verified safetensors file."""
    path = resolve(name_or_path, **kw)
    try:
        with safe_open(str(path), "pt") as f:
            metadata = dict(f.metadata() or {})
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as exc:
        raise BrushstreamError(f"{path}: not a valid safetensors file ({' '.join(str(exc).split())[:120]})") from None


# -- writing -------------------------------------------------------------------------------------------

def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> str:
    """Write safetensors atomically (temp file, then rename); metadata values become strings. Returns sha256."""
    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=meta)
    return sha256_file(path)


def manifest_entry_for_file(path: str | os.PathLike, *, name: str, method: str, licence: str, attribution: str,
                            convention: str, description: str, hub_repo_id: str = DEFAULT_HUB_REPO,
                            hub_filename: str | None = None, hub_revision: str = "main", bundled: bool = False,
                            **extra) -> dict:
    path = Path(path)
    return {"name": name, "method": method, "file": path.name, "sha256": sha256_file(path),
            "bytes": path.stat().st_size, "licence": licence, "attribution": attribution,
            "convention": convention, "description": description, "bundled": bundled,
            "hub": {"repo_id": hub_repo_id, "filename": hub_filename or path.name, "revision": hub_revision},
            **extra}


def write_manifest(entries: list[dict], path: str | os.PathLike = MANIFEST_PATH) -> None:
    text = json.dumps({"schema": 1, "weights": sorted(entries, key=lambda e: e["name"])}, indent=2) + "\n"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def register(path: str | os.PathLike, manifest_path: str | os.PathLike = MANIFEST_PATH, **fields) -> dict:
    """Add or replace one manifest entry computed from ``path``."""
    entry = manifest_entry_for_file(path, **fields)
    raw = json.loads(Path(manifest_path).read_text()) if Path(manifest_path).exists() else {"weights": []}
    entries = [e for e in raw["weights"] if e["name"] != entry["name"]] + [entry]
    write_manifest(entries, manifest_path)
    return entry


# -- maintenance (CLI: brushstream weights verify|pull) -------------------------------------------------

def _local_copies(entry: WeightEntry) -> list[Path]:
    copies = []
    if entry.bundled and (BUNDLED_DIR / entry.file).is_file():
        copies.append(BUNDLED_DIR / entry.file)
    env_dir = os.environ.get(ENV_DIR)
    if env_dir and (Path(env_dir) / entry.file).is_file():
        copies.append(Path(env_dir) / entry.file)
    try:
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(entry.hub_repo_id, entry.hub_filename, revision=entry.hub_revision,
                                        cache_dir=_cache_dir())
        if isinstance(cached, str):
            copies.append(Path(cached))
    except Exception:  # an unreadable cache is reported as "missing", not a crash
        pass
    return copies


def verify(name: str | None = None, manifest: dict[str, WeightEntry] | None = None) -> list[tuple[str, str, str]]:
    """(name, 'ok' | 'MISMATCH' | 'missing', where) for every local copy; downloads nothing."""
    manifest = manifest if manifest is not None else load_manifest()
    names = [name] if name else sorted(manifest)
    rows = []
    for n in names:
        if n not in manifest:
            raise BrushstreamError(f"unknown weights {n!r}; known: {', '.join(sorted(manifest))}")
        copies = _local_copies(manifest[n])
        if not copies:
            rows.append((n, "missing", "-"))
        for p in copies:
            try:
                _check(manifest[n], p)
                rows.append((n, "ok", str(p)))
            except BrushstreamError:
                rows.append((n, "MISMATCH", str(p)))
    return rows


def pull(name: str | None = None, manifest: dict[str, WeightEntry] | None = None) -> list[Path]:
    """Find or download, and verify, one or every manifest file."""
    manifest = manifest if manifest is not None else load_manifest()
    return [resolve(n, manifest=manifest) for n in ([name] if name else sorted(manifest))]
