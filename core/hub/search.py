"""`brushstream weights search [QUERY] [--repo OWNER/NAME[@REVISION] ...]`: styles to load, from the manifest and the Hub.

Manifest rows are its model files (name, method, styles, licence). For each Hub repository given, the revision is
resolved to its commit once (``model_info``), the safetensors files at that commit are listed (``list_repo_tree``)
and each one's metadata is read from its header alone (``parse_safetensors_file_metadata``: an HTTP range request, no
download); the licence comes from the file's metadata, else the repository's card. A Hub row's name is the pinned
reference that loads it (``hf://OWNER/NAME@COMMIT/FILE#sha256=...``, the digest from the Hub's LFS record). QUERY
keeps the rows whose name, method or a style contains it (case-insensitive). Nothing here loads or unpickles a file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BrushstreamError
from . import model_card, weights
from .hub_refs import format_hub_ref

_REPO = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


@dataclass(frozen=True)
class Row:
    name: str                 # a manifest name, or the pinned hf:// reference
    method: str
    styles: tuple[str, ...]
    licence: str
    note: str = ""            # e.g. why a Hub file cannot be loaded
    any_style: bool = False   # a method that takes any style image (shown when no styles are listed)

    def matches(self, query: str) -> bool:
        q = query.lower()
        return not q or any(q in text.lower() for text in (self.name, self.method, *self.styles))

    def line(self, max_styles: int = 6) -> str:
        styles = ", ".join(self.styles[:max_styles]) + (f" +{len(self.styles) - max_styles} more"
                                                         if len(self.styles) > max_styles else "")
        styles = styles or ("any style image" if self.any_style else "-")
        return "\t".join([self.name, self.method or "?", styles, self.licence or "?"]
                         + ([self.note] if self.note else []))


def _arbitrary() -> set[str]:
    from ..methods import available
    return {n for n, c in available().items() if c.capabilities.arbitrary_style}


def manifest_rows(manifest: dict | None = None) -> list[Row]:
    manifest = manifest if manifest is not None else weights.load_manifest()
    arbitrary = _arbitrary()
    return [Row(e.name, e.method, e.styles, e.licence, any_style=any(m in arbitrary for m in e.method.split(",")))
            for e in manifest.values() if e.role == "model"]


def _card(repo_id: str, commit: str) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        with open(hf_hub_download(repo_id, "README.md", revision=commit, endpoint=weights._endpoint(),
                                  cache_dir=weights._cache_dir()), encoding="utf-8", errors="replace") as f:
            return f.read()
    except EntryNotFoundError:
        return None


def hub_rows(repo: str) -> list[Row]:
    """The safetensors files of one repository (``OWNER/NAME[@REVISION]``) at the commit its revision is at now."""
    m = _REPO.match(repo)
    if m is None:
        raise BrushstreamError(f"--repo {repo!r}: write OWNER/NAME or OWNER/NAME@REVISION")
    repo_id, revision = m["repo"], m["rev"] or "main"
    if weights._offline():
        raise BrushstreamError(f"--repo {repo}: not searched (offline: HF_HUB_OFFLINE is set)")
    from huggingface_hub.errors import SafetensorsParsingError
    from huggingface_hub.hf_api import RepoFile

    rows, arbitrary = [], _arbitrary()
    with weights.hub_api(f"--repo {repo}") as api:
        commit = api.model_info(repo_id, revision=revision).sha
        files = [f for f in api.list_repo_tree(repo_id, revision=commit, recursive=True)
                 if isinstance(f, RepoFile) and f.path.endswith(".safetensors")]
        card = _card(repo_id, commit) if files else None
        for f in sorted(files, key=lambda f: f.path):
            ref = format_hub_ref(repo_id, f.path, commit, f.lfs.sha256 if f.lfs else "")
            try:
                meta = api.parse_safetensors_file_metadata(repo_id, f.path, revision=commit).metadata
            except SafetensorsParsingError:
                rows.append(Row(ref, "", (), model_card.licence_of(card, f.path),
                                "not a safetensors file: it cannot be loaded"))
                continue
            info = model_card.facts(meta or {})
            rows.append(Row(ref, info.method, info.styles, info.licence or model_card.licence_of(card, f.path),
                            any_style=info.method in arbitrary))
    return rows


def search(query: str = "", repos: list[str] | tuple[str, ...] = ()) -> tuple[list[Row], list[str]]:
    """(matching rows, one line per repository that could not be searched)."""
    rows, problems = [r for r in manifest_rows() if r.matches(query)], []
    for repo in repos:
        try:
            rows += [r for r in hub_rows(repo) if r.matches(query)]
        except BrushstreamError as exc:
            problems.append(str(exc))
    return rows, problems
