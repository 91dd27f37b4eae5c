"""Weights named by their place on the Hugging Face Hub: ``hf://OWNER/REPO[@REVISION]/PATH.safetensors[#sha256=HEX]``.

Community-trained styles are shared as Hub repositories the manifest does not list. This module reads such a
reference; core/hub/weights.py fetches the file with huggingface-hub (cache first, then the Hub at $HF_ENDPOINT), checks
it as a whole safetensors file and, when the reference pins it with ``#sha256=``, against that digest: a pin is the
only way a name outside the manifest can vouch for its bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BrushstreamError

PREFIX = "hf://"
_REF = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[\w./-]+?))?/(?P<file>[^#@]+\.[A-Za-z0-9]+)"
                  r"(?:#sha256=(?P<sha>[0-9a-fA-F]{64}))?$")


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    filename: str
    revision: str = "main"
    sha256: str = ""


def is_hub_ref(text: str) -> bool:
    return str(text).startswith(PREFIX)


def parse_hub_ref(text: str, suffixes: tuple[str, ...] = (".safetensors",)) -> HubRef:
    """The parts of a reference whose file ends in one of ``suffixes`` (a foreign file is imported, not loaded)."""
    match = _REF.match(str(text).strip())
    if match is None or not match["file"].lower().endswith(suffixes):
        raise BrushstreamError(f"{text!r}: not a Hub reference; write hf://OWNER/REPO[@REVISION]/FILE.safetensors "
                               f"(optionally #sha256=<64 hex digits>)")
    return HubRef(match["repo"], match["file"], match["rev"] or "main", (match["sha"] or "").lower())
