"""Weight files: manifest -> explicit path / bundled copy / $BRUSHSTREAM_WEIGHTS_DIR / HF cache / the Hub.

The only module that opens conversations with the Hugging Face Hub (through huggingface-hub): downloads here, and
``hub_api()`` for the API calls of core/hub/publish.py and core/hub/search.py. Every file found by
name is verified against the manifest's sha256 and size before it is used; a file that fails is an
error, and a bad copy in the Hugging Face cache is deleted (snapshot link and blob) so nothing corrupt
is left behind to be picked up next time. safetensors only: nothing here ever unpickles.

Waiting on the Hub is bounded: every connect and every read has a timeout ($BRUSHSTREAM_HUB_TIMEOUT
seconds, else 10 s to connect and 30 s per read), a call makes at most one retry in total, and
huggingface-hub's own retry/warning lines are kept off stderr (they go to this module's debug log), so a
missing file on an unreachable or silent Hub ends in seconds with one line. See ``hub_session.HubCall``.

A Hub reference (hf://OWNER/REPO[@REVISION]/FILE, core/hub/hub_refs.py) is pinned to a commit: a commit-hash revision
is answered by the cache without a request; a branch or tag is asked of the Hub when online (huggingface-hub then reuses
the cached bytes if they did not change) and of the cache's record of it offline. Either way the commit it resolved to
is known (the snapshot folder huggingface-hub files it under, from X-Repo-Commit), and ``fetch_ref`` returns the fully
pinned form ``hf://OWNER/REPO@COMMIT/FILE#sha256=HEX``. The Hub's own digest of a file (its LFS sha256, or git blob
sha1, which huggingface-hub names the cached blob by) is checked too, so bytes damaged on the way are refused.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from ..errors import BrushstreamError
from ..io.atomic import atomic_path
from .hub_refs import HubRef, format_hub_ref, is_commit, is_hub_ref, parse_hub_ref, pinned
from .hub_session import (
    HUB_CONNECT_TIMEOUT,
    HUB_READ_TIMEOUT,
    HUB_RETRY_PAUSE,
    HubCall,
    hub_timeouts,
    is_transient,
    transport_errors,
)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = PACKAGE_ROOT / "weights_manifest.json"
BUNDLED_DIR = PACKAGE_ROOT / "assets" / "weights"
ENV_DIR = "BRUSHSTREAM_WEIGHTS_DIR"
DEFAULT_HUB_REPO = "brushstream/brushstream-weights"
SCHEMA = 1
# Key order of a manifest entry on disk (stable diffs); anything else follows in its own order.
_ENTRY_KEYS = ("name", "method", "role", "styles", "live", "file", "sha256", "bytes", "licence", "attribution",
               "convention", "description", "bundled", "hub")
# What a file is to the methods that load it; an option that names a weight file declares the role it takes
# (Option.weights), so menus and hosts pick files by this field, never by their names.
ROLES = ("model", "encoder", "decoder", "mask", "backbone", "dataset")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightEntry:
    """One manifest record: what the file is, how to check it, where to get it, and its terms."""
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
    role: str = "model"
    styles: tuple[str, ...] = ()    # the style(s) a per-style network paints
    live: bool = False              # one of the networks the live filter loads when no style is named
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        """The manifest-file form of this entry (inverse of what load_manifest reads)."""
        d = asdict(self)
        extra = d.pop("extra")
        hub = {"repo_id": d.pop("hub_repo_id"), "filename": d.pop("hub_filename"),
               "revision": d.pop("hub_revision")}
        d["styles"] = list(d["styles"])
        for key, unset in (("styles", []), ("live", False)):   # written only where they say something
            if d[key] == unset:
                del d[key]
        return _canonical({**d, "hub": hub, **extra})


# -- manifest ------------------------------------------------------------------------------------------

def _entry_from_json(e: dict) -> WeightEntry:
    hub = e.get("hub") or {}
    return WeightEntry(
        name=e["name"], method=e["method"], file=e["file"], sha256=e["sha256"].lower(),
        bytes=int(e["bytes"]), licence=e["licence"], attribution=e["attribution"],
        convention=e["convention"], hub_repo_id=hub.get("repo_id", DEFAULT_HUB_REPO),
        hub_filename=hub.get("filename", e["file"]), hub_revision=hub.get("revision", "main"),
        bundled=bool(e.get("bundled", False)), description=e.get("description", ""),
        role=_role(e), styles=tuple(e.get("styles", ())), live=bool(e.get("live", False)),
        extra={k: v for k, v in e.items() if k not in _ENTRY_KEYS})


def _role(e: dict) -> str:
    role = e.get("role", "model")
    if role not in ROLES:
        raise ValueError(f"entry {e.get('name')!r}: role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def load_manifest(path: str | os.PathLike = MANIFEST_PATH) -> dict[str, WeightEntry]:
    """Name -> entry. Read fresh each call (it is small), so register() is seen at once."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        if raw.get("schema") != SCHEMA:
            raise ValueError(f"schema {raw.get('schema')!r}, expected {SCHEMA}")
        entries = [_entry_from_json(e) for e in raw["weights"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BrushstreamError(f"{path}: unreadable weights manifest ({type(exc).__name__}: {exc})") from None
    manifest = {e.name: e for e in entries}
    if len(manifest) != len(entries):
        raise BrushstreamError(f"{path}: weights manifest names an entry twice")
    return manifest


def _canonical(entry: dict) -> dict:
    known = {k: entry[k] for k in _ENTRY_KEYS if k in entry}
    return {**known, **{k: v for k, v in entry.items() if k not in known}}


def manifest_entry_for_file(path: str | os.PathLike, *, name: str, method: str, licence: str, attribution: str,
                            convention: str, description: str, hub_repo_id: str = DEFAULT_HUB_REPO,
                            hub_filename: str | None = None, hub_revision: str = "main", bundled: bool = False,
                            **extra) -> dict:
    """A manifest entry (JSON form) whose sha256 and size are measured from ``path``."""
    path = Path(path)
    return _canonical({
        "name": name, "method": method, "file": path.name, "sha256": sha256_file(path),
        "bytes": path.stat().st_size, "licence": licence, "attribution": attribution,
        "convention": convention, "description": description, "bundled": bundled,
        "hub": {"repo_id": hub_repo_id, "filename": hub_filename or path.name, "revision": hub_revision},
        **extra})


def write_manifest(entries: dict | list, path: str | os.PathLike = MANIFEST_PATH) -> None:
    """Write the manifest atomically, entries sorted by name and keys in a fixed order."""
    items = entries.values() if isinstance(entries, dict) else entries
    rows = [e.to_json() if isinstance(e, WeightEntry) else _canonical(dict(e)) for e in items]
    text = json.dumps({"schema": SCHEMA, "weights": sorted(rows, key=lambda e: e["name"])},
                      indent=2, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def register(path: str | os.PathLike, manifest_path: str | os.PathLike = MANIFEST_PATH, **fields) -> dict:
    """Add or replace (by name) the entry for ``path``; fields as manifest_entry_for_file takes them."""
    entry = manifest_entry_for_file(path, **fields)
    existing = load_manifest(manifest_path) if Path(manifest_path).exists() else {}
    rows = [e.to_json() for n, e in existing.items() if n != entry["name"]] + [entry]
    write_manifest(rows, manifest_path)
    return entry


# -- checking (hashes cached per file state, so a 58 MB backbone is hashed once per process) -------------

@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    real = Path(path).resolve()
    st = real.stat()
    return _sha256_cached(str(real), st.st_size, st.st_mtime_ns, st.st_ino)


def _check(entry: WeightEntry, path: Path) -> Path:
    """``path`` if its size and sha256 are the manifest's, else a one-line BrushstreamError."""
    size = path.stat().st_size
    if size != entry.bytes:
        raise BrushstreamError(f"{entry.name}: {path} is {size} bytes, expected {entry.bytes}; "
                               f"the file is truncated or corrupt")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise BrushstreamError(f"{entry.name}: sha256 mismatch for {path} (expected {entry.sha256[:12]}…, "
                               f"got {digest[:12]}…); the file is corrupt or tampered")
    return path


def _check_safetensors(path: Path) -> Path:
    """Cheap structural check (header only) of a file the manifest cannot vouch for."""
    def bad(why: str) -> BrushstreamError:
        return BrushstreamError(f"{path}: not a valid safetensors file ({why})")

    size = path.stat().st_size
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little") if size >= 8 else -1
        if not 2 <= n <= size - 8:
            raise bad("no safetensors header")
        try:
            header = json.loads(f.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise bad("unreadable header") from None
    if 8 + n + end != size:
        raise bad(f"{size} bytes, the header describes {8 + n + end}; truncated or padded")
    return path


# -- the Hugging Face side ------------------------------------------------------------------------------

class _Absent(Exception):
    """Internal: the Hub side has no copy; the message says why (for the final error line)."""


def _endpoint() -> str | None:
    # Read at call time, so HF_ENDPOINT set after import (tests, hosts, mirrors) is honoured.
    return os.environ.get("HF_ENDPOINT") or None


def _cache_dir() -> str | None:
    # huggingface-hub reads these at import time; reading them per call lets a host redirect the cache later.
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return env or constants.HF_HUB_OFFLINE


def _remove_from_cache(path: Path) -> None:
    """Delete a cached snapshot entry and the blob it links to (huggingface-hub's cache layout)."""
    blob = path.resolve()
    for p in dict.fromkeys((path, blob)):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _hub_file(entry: WeightEntry, local_only: bool, check: Callable[[Path], Path] | None = None) -> Path:
    """A verified copy from the HF cache (local_only) or the Hub; raises _Absent if there is none. ``check``
    verifies the file (default: the manifest entry's size and sha256)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{entry.hub_repo_id}@{entry.hub_revision}:{entry.hub_filename}"
    hub = f"the Hub at {_endpoint() or 'huggingface.co'}"

    def download(**kw) -> str:
        return hf_hub_download(entry.hub_repo_id, entry.hub_filename, revision=entry.hub_revision,
                               local_files_only=local_only, endpoint=_endpoint(), cache_dir=_cache_dir(), **kw)

    # A cache lookup makes no request, so a bad $BRUSHSTREAM_HUB_TIMEOUT only matters once the Hub is asked.
    call = HubCall(HUB_CONNECT_TIMEOUT, HUB_READ_TIMEOUT) if local_only else HubCall(*hub_timeouts())
    try:
        with call.active() as timeout:
            while True:
                try:
                    got = Path(download() if local_only else download(etag_timeout=timeout))
                    break
                except LocalEntryNotFoundError as exc:  # online: the HEAD failed and nothing is cached
                    if local_only or not (call.retries_left and is_transient(exc.__cause__)):
                        raise
                    call.retries_left -= 1
                    time.sleep(HUB_RETRY_PAUSE)
    except LocalEntryNotFoundError as exc:
        # Offline: simply not cached. Online: huggingface-hub says this when the Hub could not be reached.
        raise _Absent("not in the Hugging Face cache" if local_only else
                      f"{hub} could not be reached ({call.why(exc.__cause__)})") from None
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise _Absent(f"{where} is not on the Hub ({type(exc).__name__})") from None
    except transport_errors()[0] as exc:  # the download itself (after the metadata) stalled or broke off
        raise _Absent(f"the download of {where} from {hub} failed ({call.why(exc)})") from None
    except Exception as exc:  # HTTP / disk errors: their types differ across huggingface-hub versions
        raise BrushstreamError(f"{entry.name}: download of {where} failed ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:200]})") from exc
    try:
        return check(got) if check is not None else _check(entry, got)
    except BrushstreamError:
        _remove_from_cache(got)
        raise


def _from_hf(entry: WeightEntry, offline: bool, check: Callable[[Path], Path] | None = None,
             hub_first: bool = False) -> tuple[Path | None, str]:
    """Cache first, then (online) the Hub. A corrupt cached copy is dropped and fetched again online. ``hub_first``
    (a branch that may have moved): online, the Hub says which commit, and huggingface-hub reuses cached bytes."""
    if hub_first and not offline:
        _drop_if_bad(entry, check)
        try:
            return _hub_file(entry, local_only=False, check=check), ""
        except _Absent as exc:
            return None, str(exc)
    try:
        return _hub_file(entry, local_only=True, check=check), ""
    except _Absent:
        pass
    except BrushstreamError as exc:
        if offline:
            raise
        log.warning("%s; fetching a fresh copy", exc)
    if offline:
        return None, "Hub not tried (offline: HF_HUB_OFFLINE or local_files_only)"
    try:
        return _hub_file(entry, local_only=False, check=check), ""
    except _Absent as exc:
        return None, str(exc)


def _drop_if_bad(entry: WeightEntry, check: Callable[[Path], Path] | None) -> None:
    """Remove the cached copy the cache's record of ``entry``'s revision points at, if it fails ``check``; so asking the
    Hub next, which would otherwise keep a cached blob whose name matches, fetches a good one."""
    try:
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(entry.hub_repo_id, entry.hub_filename, revision=entry.hub_revision,
                                        cache_dir=_cache_dir())
    except (OSError, ValueError):
        return
    if not isinstance(cached, str):
        return
    try:
        check(Path(cached)) if check is not None else _check(entry, Path(cached))
    except BrushstreamError as exc:
        log.warning("%s; fetching a fresh copy", exc)
        _remove_from_cache(Path(cached))


def fetch_hub_file(text: str, suffixes: tuple[str, ...] | None = None, offline: bool | None = None) -> Path:
    """A local copy of a foreign file named by a Hub reference (``brushstream weights import hf://...``): fetched
    like any Hub file and checked against its #sha256 pin, if any; the importer checks the contents."""
    ref = parse_hub_ref(text, suffixes or FOREIGN_SUFFIXES)
    entry = WeightEntry(name=text, method="", file=Path(ref.filename).name, sha256=ref.sha256, bytes=-1, licence="",
                        attribution="", convention="", hub_repo_id=ref.repo_id, hub_filename=ref.filename,
                        hub_revision=ref.revision)

    def check(path: Path) -> Path:
        if ref.sha256 and sha256_file(path) != ref.sha256:
            raise BrushstreamError(f"{text}: sha256 mismatch for {path} (expected {ref.sha256[:12]}…); the file is "
                                   f"corrupt, tampered or not the pinned version")
        return path
    found, why = _from_hf(entry, _offline() if offline is None else offline, check)
    if found is None:
        raise BrushstreamError(f"{text}: not found ({why})")
    return found


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_hub_digest(text: str, path: Path) -> Path:
    """The bytes are the ones the Hub described: huggingface-hub names a cached blob by the file's ETag, which the Hub
    makes the LFS sha256 (64 hex digits) or the git blob sha1 (40) of the file; huggingface-hub itself does not compare
    what arrived with it. Other ETag forms are left unchecked."""
    blob = path.resolve().name
    if len(blob) == 64 and all(c in "0123456789abcdef" for c in blob):
        got, kind = sha256_file(path), "sha256"
    elif len(blob) == 40 and all(c in "0123456789abcdef" for c in blob):
        got, kind = _git_blob_sha1(path), "git blob sha1"
    else:
        return path
    if got != blob:
        raise BrushstreamError(f"{text}: {kind} mismatch for {path} (the Hub says {blob[:12]}…, got {got[:12]}…); the "
                               f"download was damaged or tampered with on the way")
    return path


def _snapshot_commit(path: Path, filename: str) -> str:
    """The commit a cached file belongs to: huggingface-hub files it under snapshots/<commit>/<filename>."""
    folder = path.parents[len(Path(filename).parts) - 1]
    return folder.name if folder.parent.name == "snapshots" and is_commit(folder.name) else ""


@dataclass(frozen=True)
class HubPin:
    """A Hub reference resolved and fetched: the local copy, the commit it came from and the fully pinned reference."""
    ref: HubRef
    path: Path
    commit: str
    sha256: str

    @property
    def pinned(self) -> str:
        """``hf://OWNER/REPO@COMMIT/FILE#sha256=HEX``: these bytes and no others (the asked form if no commit is known)."""
        if self.commit:
            return pinned(self.ref, self.commit, self.sha256)
        return format_hub_ref(self.ref.repo_id, self.ref.filename, self.ref.revision, self.sha256)


_announced: set[tuple[str, str]] = set()


def fetch_ref(text: str, offline: bool | None = None, announce: bool = True) -> HubPin:
    """Fetch and check the safetensors file a Hub reference names (core/hub/hub_refs.py), like a manifest file's Hub
    copy (same cache, timeouts and retry), but checked as a whole safetensors file, against the Hub's own digest of it
    and against its #sha256 pin, if any, since no manifest entry vouches for it. A commit revision comes from the cache
    if it is there; a branch or tag is asked of the Hub when online. Which commit a branch or tag resolved to is logged
    (a warning, once per process and commit: a moving reference loads other bytes later) unless ``announce`` is off."""
    ref = parse_hub_ref(text)
    offline = _offline() if offline is None else bool(offline)
    entry = WeightEntry(name=text, method="", file=Path(ref.filename).name, sha256=ref.sha256, bytes=-1, licence="",
                        attribution="", convention="", hub_repo_id=ref.repo_id, hub_filename=ref.filename,
                        hub_revision=ref.revision)

    def check(path: Path) -> Path:
        _check_safetensors(path)
        _check_hub_digest(text, path)
        if ref.sha256 and sha256_file(path) != ref.sha256:
            raise BrushstreamError(f"{text}: sha256 mismatch for {path} (expected {ref.sha256[:12]}…); the file is "
                                   f"corrupt, tampered or not the pinned version")
        return path
    found, why = _from_hf(entry, offline, check, hub_first=not is_commit(ref.revision))
    if found is None:
        raise BrushstreamError(f"{text}: not found ({why})")
    pin = HubPin(ref, found, _snapshot_commit(found, ref.filename), sha256_file(found))
    if announce and pin.commit and not is_commit(ref.revision) and (text, pin.commit) not in _announced:
        _announced.add((text, pin.commit))
        log.warning("%s: %s is commit %s%s; to load exactly this file again: %s", text, ref.revision, pin.commit,
                    " (the cached copy: offline)" if offline else "", pin.pinned)
    return pin


def _fetch_hub_ref(text: str, offline: bool) -> Path:
    return fetch_ref(text, offline).path


# -- the Hub's API (publish, search, pinning the manifest) ----------------------------------------------------

def hub_name() -> str:
    return f"the Hub at {_endpoint() or 'huggingface.co'}"


@contextlib.contextmanager
def _bounded_session(timeout):
    """huggingface-hub's shared HTTP client waits forever by default (its API calls take no timeout): for the length of
    the call it, and any client made to replace it after a dropped connection, gets ``timeout``."""
    from huggingface_hub.utils import _http

    factory = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)
    if factory is None or not hasattr(_http, "get_session"):
        yield
        return
    saved = _http.get_session().timeout

    def bounded():
        client = factory()
        client.timeout = timeout
        return client
    _http.get_session().timeout = timeout
    _http._GLOBAL_CLIENT_FACTORY = bounded
    try:
        yield
    finally:
        _http._GLOBAL_CLIENT_FACTORY = factory
        _http.get_session().timeout = saved


def _root_cause(exc: BaseException) -> BaseException:
    """huggingface-hub wraps some failures (an LFS upload's RuntimeError): the HTTP or network error inside."""
    from huggingface_hub.errors import HfHubHTTPError

    seen = exc
    while seen is not None and not isinstance(seen, (HfHubHTTPError, *transport_errors()[0])):
        seen = seen.__cause__ or seen.__context__
    return seen or exc


def _api_error(exc: BaseException, call: HubCall) -> str:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cause = _root_cause(exc)
    login = "log in with `hf auth login` or set HF_TOKEN"
    if isinstance(cause, RepositoryNotFoundError):
        return f"no such repository on {hub_name()} (or it is private or gated: {login})"
    if isinstance(cause, RevisionNotFoundError):
        return f"no such revision on {hub_name()}"
    if isinstance(cause, EntryNotFoundError):
        return f"no such file on {hub_name()}"
    if isinstance(cause, HfHubHTTPError):
        status = getattr(cause.response, "status_code", None)
        if status in (401, 403):
            return f"{hub_name()} refused it (HTTP {status}): {login} with a token that may write there"
        if status == 412:
            return f"the branch moved on {hub_name()} meanwhile (HTTP 412); run it again"
        words = " ".join(str(cause).split())
        return f"{hub_name()} answered HTTP {status}: {words[:200]}"
    if isinstance(cause, transport_errors()[0]):
        return f"{hub_name()} could not be reached ({call.why(cause)})"
    return f"{type(cause).__name__}: {' '.join(str(cause).split())[:200]}"


@contextlib.contextmanager
def hub_api(what: str):
    """A huggingface-hub ``HfApi`` on $HF_ENDPOINT (read now) for one conversation: every connect and read bounded by
    $BRUSHSTREAM_HUB_TIMEOUT (or 10 s / 30 s), huggingface-hub's log lines kept off the console, plain HTTPS instead of
    the Xet client (as for downloads). Any failure becomes one line, ``WHAT: why``. huggingface-hub's own retries of
    API calls (up to 5, with back-off, on 5xx and dropped connections) still apply; their lines go to the debug log."""
    from huggingface_hub import HfApi

    if _offline():
        raise BrushstreamError(f"{what}: offline (HF_HUB_OFFLINE is set), and this needs the Hub")
    call = HubCall(*hub_timeouts())
    with call.active() as timeout, _bounded_session(timeout):
        try:
            yield HfApi(endpoint=_endpoint())
        except BrushstreamError:
            raise
        except Exception as exc:  # HTTP / network / malformed answers: their types differ across versions
            raise BrushstreamError(f"{what}: {_api_error(exc, call)}") from exc


# -- resolution --------------------------------------------------------------------------------------------

def _unknown(name: str, manifest: dict[str, WeightEntry]) -> BrushstreamError:
    return BrushstreamError(f"unknown weights {name!r}; known: {', '.join(sorted(manifest))}")


def _explicit(text: str) -> Path:
    """A user's own file (say a retrained decoder): the manifest vouches for names, not paths, so it only
    has to be a whole safetensors file. Named copies are what gets hashed."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise BrushstreamError(f"{path}: no such weights file")
    if path.suffix.lower() in FOREIGN_SUFFIXES:   # another project's file: converted once, cached
        if _foreign_converter is None:
            raise BrushstreamError(f"{path}: another project's file, and no converter is loaded (import "
                                   f"brushstream.core.foreign)")
        return _foreign_converter(path)
    return _check_safetensors(path)


# Other projects' style files (a .pth, an .onnx) are converted by core/foreign, which sits above this module and
# registers its converter here when imported: this layer only knows that such files exist.
FOREIGN_SUFFIXES = (".pth", ".pt", ".model", ".onnx", ".ckpt", ".bin")
_foreign_converter: Callable[[Path], Path] | None = None


def register_foreign_converter(convert: Callable[[Path], Path]) -> None:
    """``convert(path)`` -> the path of a Brushstream file for another project's file (core/foreign/importer.py)."""
    global _foreign_converter
    _foreign_converter = convert


def looks_like_path(text: str) -> bool:
    """Whether a user's text names a file rather than a manifest entry or a trained style: it has an extension
    or a folder, or it exists. Every host tells the two apart with this one rule."""
    return bool(Path(text).suffix) or os.sep in text or "/" in text or Path(text).exists()


def resolve(name_or_path: str | os.PathLike, *, manifest: dict[str, WeightEntry] | None = None,
            local_files_only: bool | None = None) -> Path:
    """A local path to use: a manifest name is found and verified, a path must be a safetensors file, and a Hub
    reference (hf://OWNER/REPO/FILE.safetensors, core/hub/hub_refs.py) is fetched and checked."""
    text = os.fspath(name_or_path)
    offline = _offline() if local_files_only is None else bool(local_files_only)
    if is_hub_ref(text):
        return _fetch_hub_ref(text, offline)
    manifest = manifest if manifest is not None else load_manifest()
    if text not in manifest:
        if isinstance(name_or_path, os.PathLike) or looks_like_path(text):
            return _explicit(text)
        raise _unknown(text, manifest)
    entry = manifest[text]
    if entry.bundled and (BUNDLED_DIR / entry.file).is_file():
        return _check(entry, BUNDLED_DIR / entry.file)
    env_dir = os.environ.get(ENV_DIR)
    if env_dir and (Path(env_dir) / entry.file).is_file():
        return _check(entry, Path(env_dir) / entry.file)
    found, why = _from_hf(entry, offline)
    if found is not None:
        return found
    cache = _cache_dir() or "the default Hugging Face cache"
    raise BrushstreamError(
        f"{entry.name}: {entry.file} not found (looked in: {'bundled assets, ' if entry.bundled else ''}"
        f"${ENV_DIR}={env_dir or '(unset)'}, {cache}; {why}); set {ENV_DIR} to a folder that holds it, "
        f"or go online and run `brushstream weights pull {entry.name}`"
        + ("" if entry.bundled else f" ({entry.bytes / 1e6:.0f} MB, not bundled: `brushstream methods` says what needs it)"))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file already resolved (no tensors are read)."""
    try:
        with safe_open(str(path), "pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise BrushstreamError(f"{path}: not a valid safetensors file ({' '.join(str(exc).split())[:120]})") from None


def load_state_dict(name_or_path: str | os.PathLike, **kw) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and string metadata of a verified safetensors file (never pickle). A file read before in this process,
    unchanged since (same size, time and inode), comes from memory: the caller gets its own copies of the tensors, so
    every module built from them is independent."""
    path = resolve(name_or_path, **kw)
    st = path.stat()
    tensors, metadata = _read_verified(str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    return {k: v.clone() for k, v in tensors.items()}, dict(metadata)


@functools.lru_cache(maxsize=8)
def _read_verified(path: str, size: int, mtime_ns: int, inode: int) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """One read of a file state (the arguments after ``path`` make a changed file a new entry)."""
    try:
        with safe_open(str(path), "pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BrushstreamError(f"{path}: not a valid safetensors file ({' '.join(str(exc).split())[:120]})") from None
    # A file whose bytes decode to NaN would otherwise stylize every photo black without a word.
    damaged = [k for k, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if damaged:
        raise BrushstreamError(f"{path}: tensor {damaged[0]!r} holds NaN or infinite values; the file is damaged "
                               f"(`brushstream weights verify` checks bundled files, or fetch it again)")
    return tensors, metadata


# -- writing -----------------------------------------------------------------------------------------------

def save_weights(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict) -> str:
    """Write safetensors atomically (temp file, then rename); metadata values become strings. Returns sha256."""
    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=meta)
    # Written through the temp file atomic_path made (mode from the umask, as every other output): safetensors'
    # own save_file creates its file 0600.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return sha256_file(path)


# -- maintenance (CLI: brushstream weights verify|pull) ---------------------------------------------------

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
    except (OSError, ValueError):  # an unreadable cache or bad repo id reads as "missing", not a crash
        log.debug("no HF cache lookup for %s", entry.name, exc_info=True)
    return copies


def verify(name: str | None = None, manifest: dict[str, WeightEntry] | None = None) -> list[tuple[str, str, str]]:
    """(name, 'ok' | 'MISMATCH' | 'missing', where) for every local copy; downloads nothing, deletes nothing."""
    manifest = manifest if manifest is not None else load_manifest()
    if name is not None and name not in manifest:
        raise _unknown(name, manifest)
    rows = []
    for n in [name] if name else sorted(manifest):
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
    if name is not None and name not in manifest:
        raise _unknown(name, manifest)
    return [resolve(n, manifest=manifest) for n in ([name] if name else sorted(manifest))]
