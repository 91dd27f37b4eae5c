"""Pin the weights manifest's Hub revisions to commits: each entry's ``hub.revision`` that is a branch or tag (``main``)
becomes the 40-hex commit it is at now, so every later download gets exactly the bytes checked today.

Run it once online, after the files are on the Hub (HF_ENDPOINT selects another Hub; a token is needed only for a
private repository):

    python tools/pin_manifest_revisions.py [--manifest weights_manifest.json] [--dry-run] [--partial]

Each (repository, revision) is resolved once (``model_info``), then the files at that commit are listed
(``list_repo_tree``) and every entry is checked against them: the file must be there, with the manifest's sha256 (the
Hub's LFS record) or, for a file kept in git, its size. A revision is pinned only for an entry that checks out; by
default one that does not leaves the manifest untouched (exit 1), ``--partial`` pins the rest. The manifest is
rewritten atomically, in the form ``write_manifest`` gives it. Entries already pinned are left alone.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from brushstream.core.errors import BrushstreamError  # noqa: E402
from brushstream.core.hub import weights  # noqa: E402
from brushstream.core.hub.hub_refs import is_commit  # noqa: E402


def _snapshot(repo_id: str, revision: str) -> tuple[str, dict]:
    """(the commit ``revision`` is at, path -> RepoFile at that commit)."""
    from huggingface_hub.hf_api import RepoFile

    with weights.hub_api(f"{repo_id}@{revision}") as api:
        commit = api.model_info(repo_id, revision=revision).sha
        files = {f.path: f for f in api.list_repo_tree(repo_id, revision=commit, recursive=True)
                 if isinstance(f, RepoFile)}
    if not is_commit(commit or ""):
        raise BrushstreamError(f"{repo_id}@{revision}: the Hub named no commit for it ({commit!r})")
    return commit, files


def _problem(entry: weights.WeightEntry, files: dict, commit: str) -> str:
    f = files.get(entry.hub_filename)
    where = f"{entry.hub_repo_id}@{commit[:12]}:{entry.hub_filename}"
    if f is None:
        return f"{entry.name}: {where} is not there"
    if f.lfs is not None and f.lfs.sha256 != entry.sha256:
        return f"{entry.name}: {where} has sha256 {f.lfs.sha256[:12]}…, the manifest {entry.sha256[:12]}…"
    if f.size != entry.bytes:
        return f"{entry.name}: {where} is {f.size} bytes, the manifest says {entry.bytes}"
    return ""


def pin(manifest_path: str | Path = weights.MANIFEST_PATH, *, partial: bool = False, dry_run: bool = False
        ) -> tuple[list[tuple[str, str, str]], list[str]]:
    """([(name, revision, commit)] pinned, [one line per entry left as it was]); writes unless ``dry_run`` or (without
    ``partial``) any entry failed."""
    manifest = weights.load_manifest(manifest_path)
    snapshots: dict[tuple[str, str], tuple[str, dict] | str] = {}
    pinned, problems, updated = [], [], dict(manifest)
    for name, entry in sorted(manifest.items()):
        if is_commit(entry.hub_revision):
            continue
        key = (entry.hub_repo_id, entry.hub_revision)
        if key not in snapshots:
            try:
                snapshots[key] = _snapshot(*key)
            except BrushstreamError as exc:
                snapshots[key] = str(exc)
        snap = snapshots[key]
        if isinstance(snap, str):
            problems.append(f"{name}: {snap}")
            continue
        commit, files = snap
        why = _problem(entry, files, commit)
        if why:
            problems.append(why)
            continue
        pinned.append((name, entry.hub_revision, commit))
        updated[name] = dataclasses.replace(entry, hub_revision=commit)
    if pinned and not dry_run and (partial or not problems):
        weights.write_manifest(updated, manifest_path)
    return pinned, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", default=str(weights.MANIFEST_PATH), help="the manifest to rewrite (default: the "
                                                                            "package's)")
    ap.add_argument("--dry-run", action="store_true", help="say what would be pinned; write nothing")
    ap.add_argument("--partial", action="store_true", help="pin the entries that check out even if others do not")
    args = ap.parse_args(argv)
    try:
        pinned, problems = pin(args.manifest, partial=args.partial, dry_run=args.dry_run)
    except BrushstreamError as exc:
        print(f"pin_manifest_revisions: error: {exc}", file=sys.stderr)
        return 2
    for name, revision, commit in pinned:
        print(f"{name}\t{revision} -> {commit}")
    for line in problems:
        print(f"not pinned: {line}", file=sys.stderr)
    written = pinned and not args.dry_run and (args.partial or not problems)
    print(f"{len(pinned)} pinned, {len(problems)} not; "
          + (f"{args.manifest} rewritten" if written else f"{args.manifest} unchanged"), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
