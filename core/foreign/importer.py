"""``brushstream weights import``: a foreign file in, a Brushstream safetensors file (and its manifest-style entry) out.

Reading is the only place a foreign file is opened: a ``.pth`` is a pickle, so it goes through
``torch.load(weights_only=True)`` alone, and anything that needs more than tensors and plain containers is refused
in one line. The format is detected by how much of the file each known layout explains; an unknown layout gets one
line naming what was found and the closest known format. ``converted_copy`` is what ``--model FILE.pth`` and the
ComfyUI loader go through: the conversion is made once per original (keyed by its sha256) in the user's cache, so
loading a foreign file needs no import step, ever.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import BrushstreamError
from ..hub import weights as weight_store
from . import Converted, ForeignFormat, formats

CACHE_ENV = "BRUSHSTREAM_CACHE"


@dataclass(frozen=True)
class Imported:
    path: Path          # the converted safetensors file
    entry: dict         # its manifest-style entry
    format: ForeignFormat


# -- reading ---------------------------------------------------------------------------------------------------

def _flatten(obj: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """name -> tensor of a (nested) state dict; non-tensor leaves (step counters, names) are left out."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(obj, torch.Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    return out


def _unwrap(obj: Any) -> Any:
    """The state dict inside the containers training scripts save (``{"state_dict": ...}``, ``{"model": ...}``)."""
    while isinstance(obj, dict) and len(obj) <= 4:
        inner = [obj[k] for k in ("state_dict", "model", "state", "net") if isinstance(obj.get(k), dict)]
        if not inner:
            break
        obj = inner[0]
    return obj


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a PyTorch file, opened with ``weights_only=True`` (never an arbitrary unpickle)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        why = f"it holds a {found[1]} object" if found else "it holds objects other than tensors"
        raise BrushstreamError(f"{path}: refused: {why}, and a pickle is never opened beyond tensors and plain "
                               f"containers (torch.load weights_only=True), since unpickling runs code") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError) as exc:
        raise BrushstreamError(f"{path}: not a readable PyTorch file ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:120]})") from None
    tensors = {k.removeprefix("module."): v for k, v in _flatten(_unwrap(obj)).items()}
    if not tensors:
        raise BrushstreamError(f"{path}: holds no tensors (a {type(obj).__name__}); not a network's weights")
    return tensors


def read_onnx(path: Path):
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:   # protobuf's DecodeError and friends differ across versions
        raise BrushstreamError(f"{path}: not a readable ONNX file ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:120]})") from None
    if not model.graph.node:
        raise BrushstreamError(f"{path}: an ONNX file with an empty graph")
    return model


def _reader_for(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK" or head[:1] == b"\x80":   # torch.save's zip archive, or a legacy pickle
        return "state_dict"
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08":   # ONNX protobuf starts with ir_version (field 1)
        return "onnx"
    raise BrushstreamError(f"{path}: neither a PyTorch file nor an ONNX graph (it starts with {head!r})")


def read_foreign(path: Path, reader: str) -> Any:
    return read_state_dict(path) if reader == "state_dict" else read_onnx(path)


def _check_finite(path: Path, converted: Converted) -> None:
    bad = [k for k, t in converted.tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise BrushstreamError(f"{path}: tensor {bad[0]!r} holds NaN or infinite values; the file is damaged")


# -- detecting and converting ------------------------------------------------------------------------------------

def _describe(contents: Any) -> str:
    if isinstance(contents, dict):
        keys = list(contents)
        return f"{len(keys)} tensors such as {', '.join(keys[:3])}"
    ops = [n.op_type for n in contents.graph.node]
    return f"an ONNX graph of {len(ops)} nodes ({', '.join(sorted(set(ops))[:5])})"


def detect(path: Path, contents: Any, reader: str, wanted: str = "auto") -> ForeignFormat:
    """The format that explains all of ``contents``; ``wanted`` names one (then it must fit)."""
    known = formats()
    if wanted != "auto":
        if wanted not in known:
            raise BrushstreamError(f"--format {wanted}: unknown; known: auto, {', '.join(known)}")
        fmt = known[wanted]
        if fmt.reader != reader:
            raise BrushstreamError(f"{path}: --format {wanted} reads {fmt.reader} files, this is {reader}")
        score = fmt.match(contents)
        if score < 1.0:
            raise BrushstreamError(f"{path}: does not fit --format {wanted} ({_describe(contents)}; the layout "
                                   f"explains {score:.0%} of it)")
        return fmt
    candidates = [f for f in known.values() if f.reader == reader]
    scored = sorted(((f.match(contents), i, f) for i, f in enumerate(candidates)), key=lambda t: (-t[0], t[1]))
    if scored and scored[0][0] >= 1.0:
        return scored[0][2]
    closest = ""
    if scored:
        score, _, fmt = scored[0]
        closest = f"; closest known format: {fmt.name} ({score:.0%} explained{_near_miss(fmt, contents, score)})"
    raise BrushstreamError(f"{path}: unknown layout ({_describe(contents)}){closest}")


def _near_miss(fmt: ForeignFormat, contents: Any, score: float) -> str:
    """What stops a nearly fitting file from converting (a missing key, a wrong shape), for the error line."""
    if score < 0.9:
        return ""
    try:
        fmt.convert(contents)
    except (KeyError, ValueError, RuntimeError, IndexError) as exc:
        return f"; {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    return ""


def convert_file(path: str | os.PathLike, wanted: str = "auto") -> tuple[Converted, ForeignFormat]:
    path = Path(path)
    if not path.is_file():
        raise BrushstreamError(f"{path}: no such file")
    reader = _reader_for(path)
    contents = read_foreign(path, reader)
    fmt = detect(path, contents, reader, wanted)
    try:
        converted = fmt.convert(contents)
    except (KeyError, ValueError, RuntimeError) as exc:
        raise BrushstreamError(f"{path}: looks like {fmt.name} but could not be converted ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:160]})") from None
    _check_finite(path, converted)
    return converted, fmt


def style_of(original: Path) -> str:
    """The style a per-style network paints, from its file name: the ONNX model zoo's opset suffix dropped
    (candy-9.onnx -> candy, rain-princess-8.onnx -> rain_princess)."""
    return re.sub(r"-\d+$", "", original.stem).replace("-", "_")


def _metadata(converted: Converted, fmt: ForeignFormat, original: Path, original_sha: str) -> dict:
    if converted.role == "model" and "styles" not in converted.metadata:   # a per-style network names no style
        converted.metadata["styles"] = json.dumps([style_of(original)])
    return {"arch": converted.arch, "config": json.dumps({"arch": converted.arch, **converted.config}),
            "method": converted.method, "role": converted.role, **converted.metadata,
            "imported_format": fmt.name, "imported_from": original.name, "imported_sha256": original_sha,
            "licence": fmt.licence, "convention": "RGB 0-1 in, RGB 0-1 out (converted from: "
                                                  f"{fmt.convention})"}


def write_converted(path: str | os.PathLike, converted: Converted, fmt: ForeignFormat, original: Path) -> dict:
    """Write the safetensors file atomically; return its manifest-style entry (sha256 of both files)."""
    path = Path(path)
    original_sha = weight_store.sha256_file(original)
    sha = weight_store.save_weights(path, converted.tensors, _metadata(converted, fmt, original, original_sha))
    return {"name": path.stem, "method": converted.method, "role": converted.role,
            **({"styles": json.loads(converted.metadata["styles"]) if isinstance(converted.metadata["styles"], str)
                else list(converted.metadata["styles"])} if "styles" in converted.metadata else {}),
            "file": path.name, "sha256": sha, "bytes": path.stat().st_size, "licence": fmt.licence,
            "attribution": f"converted by brushstream weights import from {original.name} ({fmt.source})",
            "convention": "RGB 0-1 in, RGB 0-1 out", "description": fmt.summary,
            "source": {"format": fmt.name, "project": fmt.source, "file": original.name, "sha256": original_sha,
                       "convention": fmt.convention}}


def import_file(source: str, wanted: str = "auto", name: str | None = None,
                out_dir: str | os.PathLike = ".") -> Imported:
    """Convert ``source`` (a file, or hf://OWNER/REPO[@REV]/FILE) to ``out_dir/NAME.safetensors`` plus
    ``NAME.json`` (its entry)."""
    original = weight_store.fetch_hub_file(source) if weight_store.is_hub_ref(source) else Path(source).expanduser()
    converted, fmt = convert_file(original, wanted)
    name = name or original.stem
    if not name or "/" in name or name.startswith("."):
        raise BrushstreamError(f"--name {name!r}: give a plain file name")
    out = Path(out_dir) / f"{name}.safetensors"
    entry = write_converted(out, converted, fmt, original)
    if weight_store.is_hub_ref(source):
        entry["source"]["hub"] = source
    from ..io.atomic import atomic_path
    with atomic_path(out.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
    return Imported(out, entry, fmt)


# -- loading a foreign file directly ------------------------------------------------------------------------------

def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "brushstream"


def converted_copy(path: str | os.PathLike) -> Path:
    """The Brushstream file for a foreign one, converted on first use into the cache (one file per original sha256,
    written atomically), so ``--model candy.pth`` loads like any safetensors file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BrushstreamError(f"{path}: no such weights file")
    out = cache_dir() / "converted" / f"{weight_store.sha256_file(path)}.safetensors"
    if not out.is_file():
        converted, fmt = convert_file(path)
        write_converted(out, converted, fmt, path)
    return out
