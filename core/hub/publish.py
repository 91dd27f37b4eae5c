"""`brushstream weights publish FILE --repo OWNER/NAME`: share a Brushstream weight file on the Hugging Face Hub.

The file is checked first (a whole safetensors file, finite tensors, metadata naming a Brushstream method); anything
else is refused in one line before the Hub is asked. Then, through huggingface-hub's API (``weights.hub_api``:
bounded, quiet): ``create_repo(exist_ok=True)``, ``create_branch`` for a branch other than main, one commit with the
file and small JPEG thumbnails of its style images (``--style IMAGE``, else the recipe's style images where they still
exist on this machine), and a second commit with the model card (core/hub/model_card.py), which names the first
commit: ``--model hf://OWNER/NAME@<commit>/FILE#sha256=...`` loads exactly these bytes whatever the branch does later.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrushstreamError
from . import model_card, weights
from .hub_refs import format_hub_ref, is_commit

THUMBNAIL_PX = 256
MAX_THUMBNAILS = 8
_REPO = re.compile(r"^[\w.-]+/[\w.-]+$")
_BRANCH = re.compile(r"^[\w.-]+(?:/[\w.-]+)*$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StyleFile:
    """A checked Brushstream file, ready to publish."""
    path: Path
    sha256: str
    size: int
    facts: model_card.Facts
    metadata: dict


@dataclass(frozen=True)
class Published:
    repo_id: str
    filename: str
    revision: str
    commit: str          # the commit that holds the file (what the pinned reference names)
    card_commit: str     # the commit that holds the card (the branch's head afterwards)
    sha256: str
    files: tuple[str, ...]

    @property
    def pinned(self) -> str:
        return format_hub_ref(self.repo_id, self.filename, self.commit, self.sha256)


def read_style_file(path: str | os.PathLike, *, method: str | None = None, licence: str | None = None) -> StyleFile:
    """``path`` checked as a Brushstream weight file (one-line error otherwise); ``method``/``licence`` fill in what
    its metadata does not say (a file that names its method must be published as that method)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BrushstreamError(f"{path}: no such file")
    if path.suffix != ".safetensors":
        raise BrushstreamError(f"{path}: not a Brushstream weight file (a .safetensors file is published, and nothing "
                               f"else: `brushstream weights import` converts other formats first)")
    weights._check_safetensors(path)           # header and size, before anything is read
    tensors, meta = weights.load_state_dict(path)   # whole, finite tensors (never unpickles)
    if not tensors:
        raise BrushstreamError(f"{path}: not a Brushstream weight file (it holds no tensors)")
    info = model_card.facts(meta)
    from ..methods import available

    known = available()
    if method and info.method and method != info.method:
        raise BrushstreamError(f"{path}: --method {method}, but the file says it is a {info.method} file")
    chosen = method or info.method
    if chosen not in known:
        what = f"names method {chosen!r}" if chosen else "names no method (no method, recipe_name or arch)"
        raise BrushstreamError(f"{path}: not a Brushstream weight file: its metadata {what}; known methods: "
                               f"{', '.join(known)} (--method says which, for a file of your own)")
    chosen_licence = (licence or info.licence).strip()
    if licence and info.licence and licence.strip() != info.licence:
        raise BrushstreamError(f"{path}: --licence {licence}, but the file says {info.licence}")
    if not chosen_licence:
        raise BrushstreamError(f"{path}: its metadata states no licence; give --licence (e.g. MIT, CC-BY-4.0): the "
                               f"card tells others on what terms they may use it")
    info = dataclasses.replace(info, method=chosen, licence=chosen_licence)
    command = _recipe_command(meta)
    if command and info.recipe is not None and not info.recipe.get("command"):
        info = dataclasses.replace(info, recipe={"command": command, **info.recipe})
    return StyleFile(path, weights.sha256_file(path), path.stat().st_size, info, meta)


def _recipe_command(meta: dict) -> str:
    """The `brushstream train` command that reruns the file's recipe (paths relative to its data folder), or ''."""
    recipe = model_card._json(meta.get("recipe"))
    if not meta.get("recipe_name") or not isinstance(recipe, dict):
        return ""
    try:
        from ..train.catalogue import get_recipe

        cls = get_recipe(meta["recipe_name"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in recipe.items() if k in names}).command()
    except Exception:  # a recipe from another version, or one that no longer builds: the JSON says it all
        log.debug("no command for recipe %s", meta.get("recipe_name"), exc_info=True)
        return ""


def thumbnail(image: str | os.PathLike) -> bytes:
    """A small JPEG of a style image (longer side THUMBNAIL_PX)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            im.save(out, "JPEG", quality=85)
            return out.getvalue()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise BrushstreamError(f"--style {image}: not a readable image ({type(exc).__name__})") from None


def _thumbnails(style_file: StyleFile, styles: list[str]) -> list[tuple[str, str, bytes]]:
    """(style name, path in the repository, JPEG) for ``styles``, else the recipe's style images that exist here."""
    images = [Path(s).expanduser() for s in styles]
    if not images:
        images = [Path(s) for s in model_card.style_paths(style_file.metadata) if Path(s).is_file()]
    stem = style_file.path.stem
    seen: dict[str, tuple[str, str, bytes]] = {}
    for image in images[:MAX_THUMBNAILS]:
        if not image.is_file():
            raise BrushstreamError(f"--style {image}: no such image")
        name = re.sub(r"[^\w.-]+", "_", image.stem)
        seen.setdefault(name, (name, f"thumbnails/{stem}/{name}.jpg", thumbnail(image)))
    return list(seen.values())


def _known_licences() -> dict[str, str]:
    try:
        return {n: e.licence for n, e in weights.load_manifest().items()}
    except BrushstreamError:
        return {}


def _existing_card(repo_id: str, commit: str) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(repo_id, "README.md", revision=commit, endpoint=weights._endpoint(),
                               cache_dir=weights._cache_dir())
    except EntryNotFoundError:
        return None
    return Path(path).read_text(encoding="utf-8", errors="replace")


def publish(path: str | os.PathLike, repo_id: str, *, revision: str = "main", private: bool = False,
            licence: str | None = None, method: str | None = None, styles: list[str] | None = None) -> Published:
    """Upload ``path`` (checked) with its thumbnails, then its model card; the file's commit is the pinned one."""
    if not _REPO.match(repo_id or ""):
        raise BrushstreamError(f"--repo {repo_id!r}: write OWNER/NAME")
    if not _BRANCH.match(revision or "") or is_commit(revision):
        raise BrushstreamError(f"--revision {revision!r}: give a branch name (a commit cannot be published to)")
    style_file = read_style_file(path, method=method, licence=licence)
    thumbs = _thumbnails(style_file, list(styles or []))
    if weights._offline():
        raise BrushstreamError(f"publish {repo_id}: offline (HF_HUB_OFFLINE is set); publishing needs the Hub")
    from huggingface_hub import CommitOperationAdd

    from ..methods import available

    info, filename = style_file.facts, style_file.path.name
    cls = available()[info.method]
    option = next((o.name for o in cls.options if o.weights == info.role), "model")
    with weights.hub_api(f"publish {repo_id}") as api:
        api.create_repo(repo_id, exist_ok=True, private=True if private else None)
        if revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        ops = [CommitOperationAdd(path_in_repo=filename, path_or_fileobj=str(style_file.path))]
        ops += [CommitOperationAdd(path_in_repo=where, path_or_fileobj=data) for _, where, data in thumbs]
        what = f"{', '.join(info.styles[:3])}{' …' if len(info.styles) > 3 else ''}"
        first = api.create_commit(repo_id, ops, revision=revision,
                                  commit_message=f"Add {filename}: Brushstream {info.method}"
                                                 + (f" ({what})" if what else ""),
                                  commit_description=f"sha256 {style_file.sha256}, licence {info.licence}")
        section = model_card.section(
            repo_id=repo_id, filename=filename, commit=first.oid, sha256=style_file.sha256, size=style_file.size,
            info=info, method_summary=cls.summary, arbitrary=cls.capabilities.arbitrary_style, option=option,
            thumbnails=[(name, where) for name, where, _ in thumbs], known_licences=_known_licences())
        text = model_card.card(repo_id, section, _existing_card(repo_id, first.oid))
        second = api.create_commit(repo_id, [CommitOperationAdd(path_in_repo="README.md",
                                                                path_or_fileobj=text.encode("utf-8"))],
                                   revision=revision, parent_commit=first.oid,
                                   commit_message=f"Model card: {filename}")
    return Published(repo_id, filename, revision, first.oid, second.oid, style_file.sha256,
                     (filename, *(where for _, where, _ in thumbs)))
