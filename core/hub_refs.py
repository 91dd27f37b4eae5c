"""Weights named by their place on the Hugging Face Hub: ``hf://OWNER/REPO[@REVISION]/PATH.safetensors[#sha256=HEX]``.

Community-trained styles are shared as Hub repositories the manifest does not list. Such a file is fetched with
huggingface-hub (cache first, then the Hub at $HF_ENDPOINT), checked as a whole safetensors file and, when the
reference pins it with ``#sha256=``, checked against that digest: a pin is the only way a name outside the
manifest can vouch for its bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BrushstreamError

PREFIX = "hf://"
_REF = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[\w./-]+?))?/(?P<file>[^#@]+\.safetensors)"
                  r"(?:#sha256=(?P<sha>[0-9a-fA-F]{64}))?$")


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    filename: str
    revision: str = "main"
    sha256: str = ""


def is_hub_ref(text: str) -> bool:
    return str(text).startswith(PREFIX)


def parse_hub_ref(text: str) -> HubRef:
    match = _REF.match(str(text).strip())
    if match is None:
        raise BrushstreamError(f"{text!r}: not a Hub reference; write hf://OWNER/REPO[@REVISION]/FILE.safetensors "
                               f"(optionally #sha256=<64 hex digits>)")
    return HubRef(match["repo"], match["file"], match["rev"] or "main", (match["sha"] or "").lower())


def fetch_hub_ref(text: str) -> Path:
    """A local, checked copy of the file ``text`` names (see the module docstring)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    from .weights import _cache_dir, _check_safetensors, _endpoint, _offline, sha256_file

    ref = parse_hub_ref(text)
    where = f"{ref.repo_id}@{ref.revision}:{ref.filename}"

    def download(local_only: bool) -> Path:
        return Path(hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision, local_files_only=local_only,
                                    endpoint=_endpoint(), cache_dir=_cache_dir()))

    try:
        try:
            path = download(local_only=True)
        except Exception:
            if _offline():
                raise BrushstreamError(f"{text}: not in the Hugging Face cache and the Hub is off (HF_HUB_OFFLINE)")
            path = download(local_only=False)
    except BrushstreamError:
        raise
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise BrushstreamError(f"{text}: {where} is not on the Hub ({type(exc).__name__})") from None
    except Exception as exc:   # connection and HTTP errors: their types differ across huggingface-hub versions
        raise BrushstreamError(f"{text}: download of {where} from {_endpoint() or 'huggingface.co'} failed "
                               f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
    _check_safetensors(path)
    if ref.sha256 and sha256_file(path) != ref.sha256:
        raise BrushstreamError(f"{text}: sha256 mismatch for {path} (expected {ref.sha256[:12]}…); the file is "
                               f"corrupt, tampered or not the pinned version")
    return path
