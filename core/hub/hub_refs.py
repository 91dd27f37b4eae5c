"""Weights named by their place on the Hugging Face Hub: ``hf://OWNER/REPO[@REVISION]/PATH.safetensors[#sha256=HEX]``.

Community-trained styles are shared as Hub repositories the manifest does not list. This module reads such a
reference; core/hub/weights.py fetches the file with huggingface-hub (from the cache or the Hub at $HF_ENDPOINT), checks
it as a whole safetensors file, against the Hub's own digest of it and, when the reference pins it with ``#sha256=``,
against that digest: a pin is the only way a name outside the manifest can vouch for its bytes.

A REVISION that is a 40-hex commit hash names one immutable snapshot (the cache answers it once it holds it); a branch
or tag moves (asked of the Hub when online). ``pinned`` writes the fully pinned form (commit and digest) that
``brushstream weights pull`` and ``weights publish`` print.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BrushstreamError

PREFIX = "hf://"
_REF = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[\w./-]+?))?/(?P<file>[^#@]+\.[A-Za-z0-9]+)"
                  r"(?:#sha256=(?P<sha>[0-9a-fA-F]{64}))?$")
_COMMIT = re.compile(r"[0-9a-f]{40}")


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


def is_commit(revision: str) -> bool:
    """Whether a revision is a full commit hash (immutable), not a branch or tag (which move)."""
    return _COMMIT.fullmatch(str(revision)) is not None


def format_hub_ref(repo_id: str, filename: str, revision: str = "", sha256: str = "") -> str:
    """``hf://REPO[@REVISION]/FILE[#sha256=HEX]``; ``pinned`` is this with a commit and a digest."""
    return f"{PREFIX}{repo_id}{'@' + revision if revision else ''}/{filename}{'#sha256=' + sha256 if sha256 else ''}"


def pinned(ref: HubRef, commit: str, sha256: str) -> str:
    """The reference to ``ref``'s file at one commit, with its digest: it names these bytes and no others."""
    if not is_commit(commit):
        raise ValueError(f"not a commit hash: {commit!r}")
    return format_hub_ref(ref.repo_id, ref.filename, commit, sha256)
