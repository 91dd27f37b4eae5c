"""Styles other projects share, in their own formats: one module per format, all behind ``FORMATS``.

A format module declares one ``ForeignFormat``: how its files are read (a PyTorch state dict opened with
``torch.load(weights_only=True)``, never an arbitrary pickle, or an ONNX graph), how well a file's contents fit
it (``match``: the share of what was found that the layout explains, so detection and the "closest known
format" line use one number), and how to rebuild a Brushstream network from it (``convert``). Converted files
are ordinary Brushstream safetensors: core/foreign/importer.py writes them and every host loads them like
any other file.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

# How a format's files are opened: "state_dict" (a pickle read by torch.load(weights_only=True), flattened to
# name -> tensor) or "onnx" (an onnx.ModelProto).
READERS = ("state_dict", "onnx")


@dataclass
class Converted:
    """A Brushstream network rebuilt from a foreign file: what ``trained_network`` / ``load_verified`` read back.

    ``tensors`` is the network's own state dict; ``config`` its architecture and configuration (written to the
    file's metadata as ``arch`` and ``config``); ``metadata`` anything else the method reads (``styles``, ``level``).
    """
    method: str
    arch: str
    role: str
    tensors: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ForeignFormat:
    name: str                       # what --format takes
    summary: str                    # one line for `brushstream weights import --help` and docs
    source: str                     # the project that shares such files
    licence: str                    # as the source declares it
    convention: str                 # the input and output the original network expects, in words
    reader: str                     # one of READERS
    suffixes: tuple[str, ...]       # file name endings this format is usually saved with
    match: Callable[[Any], float]   # 0..1: the share of the file's contents this layout explains
    convert: Callable[[Any], Converted]

    def __post_init__(self):
        if self.reader not in READERS:
            raise ValueError(f"{self.name}: reader must be one of {READERS}, got {self.reader!r}")


def check_layout(tensors: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """KeyError naming the first missing tensors, or ValueError naming the first of the wrong shape."""
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise KeyError(f"missing {', '.join(missing[:3])}")
    wrong = [k for k, shape in expected.items() if tuple(tensors[k].shape) != shape]
    if wrong:
        raise ValueError(f"{wrong[0]} is {tuple(tensors[wrong[0]].shape)}, expected {expected[wrong[0]]}")


# One module per format, in the order detection breaks ties.
_MODULES = ("pytorch_examples", "rrmina", "onnx_zoo", "msgnet_reference", "adain_release", "lst_release")
FORMATS: dict[str, ForeignFormat] = {}


def _load_formats() -> dict[str, ForeignFormat]:
    if not FORMATS:
        for module in _MODULES:
            fmt = importlib.import_module(f"{__name__}.{module}").FORMAT
            FORMATS[fmt.name] = fmt
    return FORMATS


def formats() -> dict[str, ForeignFormat]:
    """Every known foreign format by name."""
    return _load_formats()


def _register_converter() -> None:
    from ..hub import weights
    from .importer import converted_copy

    weights.register_foreign_converter(converted_copy)


_register_converter()   # from now on every host's --model takes another project's file
