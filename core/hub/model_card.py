"""What a Brushstream weight file says about itself, and the model card (README.md) it is published with.

``facts(metadata)`` reads a file's safetensors metadata (the strings the training loop and the importer write:
``method`` / ``trained_for`` / ``recipe_name`` / ``arch``, ``styles``, ``recipe``, ``config``, ``final_losses``,
evaluation figures, ``licence``, the networks it was trained with). ``card()`` writes one section per file into a
repository's README.md: a repository may hold several styles, so publishing one file replaces its own section (between
``<!-- brushstream:file {...} -->`` and ``<!-- brushstream:end FILE -->``) and keeps the others as they were. The YAML
front matter (licence, library, tags) is rebuilt from all sections. Paths on the trainer's machine are reduced to
their last part before they reach a card.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# A network's arch (written by every recipe) -> the method that loads it, for files that name no method.
ARCH_METHODS = {"johnson_transform": "johnson", "reconet": "reconet", "metanet": "metanet", "msgnet": "msgnet",
                "microast": "microast", "lst_transform": "lst", "vgg_decoder": "adain", "student_encoder": "adain"}
ARCH_ROLES = {"vgg_decoder": "decoder", "student_encoder": "encoder"}
RECIPE_METHODS = {"decoder": "wct", "distill": "adain"}   # recipes named for what they train, not for a method
VGG16_LOSS_NETWORK = "vgg16_imagenet_caffe"   # what every recipe's perceptual losses run on (core/train/losses.py)
# Metadata naming other weight files: (key, what it is to this file).
_NETWORKS = (("encoder", "encoder it reads"), ("input_encoder", "encoder it reads"), ("decoder", "decoder it feeds"),
             ("loss_network", "loss network it was trained with"), ("teacher", "teacher it was distilled from"))
_TRAINING_KEYS = ("steps", "final_losses", "final_loss", "budget_minutes", "trained_on", "precision", "storage")
# Hugging Face's licence identifiers for the licences Brushstream files carry; anything else is "other".
HF_LICENCES = {"mit": "mit", "bsd-2-clause": "bsd-2-clause", "bsd-3-clause": "bsd-3-clause", "apache-2.0": "apache-2.0",
               "cc-by-4.0": "cc-by-4.0", "cc-by-sa-4.0": "cc-by-sa-4.0", "cc-by-nc-4.0": "cc-by-nc-4.0",
               "cc-by-nc-sa-4.0": "cc-by-nc-sa-4.0", "cc0-1.0": "cc0-1.0", "gpl-3.0": "gpl-3.0",
               "agpl-3.0": "agpl-3.0", "lgpl-3.0": "lgpl-3.0", "mpl-2.0": "mpl-2.0", "unlicense": "unlicense",
               "openrail": "openrail"}


def _json(text: str | None):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _strip_machine_paths(value):
    """Absolute, home and parent-relative paths -> their last part (a card names no folder of the trainer's)."""
    if isinstance(value, dict):
        return {k: _strip_machine_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_machine_paths(v) for v in value]
    if isinstance(value, str):
        words = value.split(" ")
        return " ".join(w.rstrip("/").rsplit("/", 1)[-1] if w.startswith(("/", "~", "../", "./")) or
                        re.match(r"^[A-Za-z]:[\\/]", w) else w for w in words)
    return value


@dataclass(frozen=True)
class Facts:
    """What a file's metadata says, in the terms a card and a search show."""
    method: str
    role: str
    arch: str
    styles: tuple[str, ...]
    licence: str
    recipe: dict | None = None
    config: dict | None = None
    training: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    networks: tuple[tuple[str, str], ...] = ()     # (weights name, what it is to this file)
    provenance: dict = field(default_factory=dict)


def method_of(meta: dict[str, str]) -> str:
    for key in ("method", "trained_for"):
        if meta.get(key):
            return meta[key]
    recipe = meta.get("recipe_name", "")
    if recipe:
        return RECIPE_METHODS.get(recipe, recipe)
    return ARCH_METHODS.get(meta.get("arch", ""), "")


def styles_of(meta: dict[str, str]) -> tuple[str, ...]:
    styles = _json(meta.get("styles"))
    if isinstance(styles, list):
        return tuple(str(s) for s in styles)
    return (meta["styles"],) if meta.get("styles") else ()


def facts(meta: dict[str, str]) -> Facts:
    arch = meta.get("arch", "")
    recipe = _json(meta.get("recipe"))
    config = _json(meta.get("config"))
    training = {k: meta[k] for k in _TRAINING_KEYS if meta.get(k)}
    evaluation = {}
    for key, value in meta.items():
        parsed = _json(value)
        if key in ("metrics", "eval", "evaluation") and isinstance(parsed, dict):
            evaluation.update({str(k): v for k, v in parsed.items()})
        elif "eval" in key and key not in evaluation:
            evaluation[key] = value
    networks = [(meta[k], what) for k, what in _NETWORKS if meta.get(k)]
    loss = "loss network it was trained with"
    if isinstance(recipe, dict):
        networks += [(recipe[k], loss) for k in ("vgg16", "loss_network")
                     if isinstance(recipe.get(k), str) and recipe[k] and (recipe[k], loss) not in networks]
        if recipe.get("style_layers") and not any(what == loss for _, what in networks):
            networks.append((VGG16_LOSS_NETWORK, loss))   # core/train/losses.py: the style layers are VGG16's
    provenance = {k: _strip_machine_paths(meta[k]) for k in ("source", "init_from", "imported_from", "imported_format",
                                                             "imported_sha256", "copyright") if meta.get(k)}
    return Facts(method=method_of(meta), role=meta.get("role") or ARCH_ROLES.get(arch, "model"), arch=arch,
                 styles=styles_of(meta), licence=meta.get("licence") or meta.get("license") or "",
                 recipe=_strip_machine_paths(recipe) if isinstance(recipe, dict) else None,
                 config=config if isinstance(config, dict) else None, training=training, evaluation=evaluation,
                 networks=tuple(dict.fromkeys(networks)), provenance=provenance)


def style_paths(meta: dict[str, str]) -> list[str]:
    """The style images the recipe names (paths on the trainer's machine), for thumbnails when they still exist."""
    recipe = _json(meta.get("recipe"))
    styles = recipe.get("style") if isinstance(recipe, dict) else None
    return [s for s in styles if isinstance(s, str)] if isinstance(styles, list) else []


def hf_licence(licence: str) -> str:
    return HF_LICENCES.get(licence.strip().lower(), "other")


# -- the card ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """One file's part of a card; ``head`` is what the front matter is rebuilt from."""
    file: str
    method: str
    licence: str
    text: str

    def render(self) -> str:
        head = json.dumps({"file": self.file, "method": self.method, "licence": self.licence}, ensure_ascii=False)
        return f"<!-- brushstream:file {head} -->\n{self.text.strip()}\n<!-- brushstream:end {self.file} -->\n"


_SECTION = re.compile(r"<!-- brushstream:file (?P<head>\{.*?\}) -->\n(?P<text>.*?)\n?<!-- brushstream:end (?P<end>.+?) -->",
                      re.S)


def sections(readme: str | None) -> list[Section]:
    """The file sections of a card written by ``card`` (anything else in it is not kept)."""
    found = []
    for m in _SECTION.finditer(readme or ""):
        try:
            head = json.loads(m["head"])
        except ValueError:
            continue
        if isinstance(head, dict) and head.get("file") == m["end"]:
            found.append(Section(head["file"], str(head.get("method", "")), str(head.get("licence", "")), m["text"]))
    return found


def licence_of(readme: str | None, filename: str) -> str:
    """A file's licence as its repository's card states it (its section, else the front matter), or ''."""
    for s in sections(readme):
        if s.file == filename:
            return s.licence
    m = re.search(r"^---\n(.*?)\n---", readme or "", re.S)
    lic = re.search(r"^license:\s*(\S+)\s*$", m[1], re.M) if m else None
    return lic[1] if lic and lic[1] != "other" else ""


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _table(rows: dict) -> str:
    lines = ["| | |", "|---|---|"]
    for k, v in rows.items():
        text = v if isinstance(v, str) else json.dumps(v)
        lines.append(f"| {k} | {text.replace('|', '/')} |")
    return "\n".join(lines)


def section(*, repo_id: str, filename: str, commit: str, sha256: str, size: int, info: Facts,
            method_summary: str = "", arbitrary: bool = False, option: str = "model",
            thumbnails: list[tuple[str, str]] = (), known_licences: dict[str, str] | None = None) -> Section:
    """The card section for one file. ``thumbnails``: (style name, path in the repository); ``option``: the stylize
    option that takes a file of this role (``model``, ``decoder``, ``encoder``); ``known_licences``: licences of the
    manifest's files, for the networks this one relies on."""
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    ref = f"hf://{repo_id}@{commit}/{filename}#sha256={sha256}"
    out = [f"## {stem}", "",
           f"A Brushstream **{info.method}** {info.role} file" + (f" ({method_summary})." if method_summary else "."),
           "", f"- file: `{filename}` ({_size(size)}), sha256 `{sha256}`",
           f"- licence: **{info.licence}**"]
    if info.arch:
        out.append(f"- network: `{info.arch}`")
    if info.styles:
        label = "trained on these styles; it takes any style image" if arbitrary else "paints"
        out.append(f"- {label}: {', '.join(info.styles)}")
    if thumbnails:
        out += ["", " ".join(f"![{name}]({path})" for name, path in thumbnails)]
    out += ["", "### Load it", "", "Pinned to the commit that added this file, and to its bytes:", "", "```sh"]
    style = ("--style painting.jpg " if arbitrary and not info.styles else
             f"--style {info.styles[0]} " if len(info.styles) > 1 and not arbitrary else
             "--style painting.jpg " if arbitrary else "")
    out += [f"brushstream stylize photo.jpg --method {info.method} --{option} {ref} {style}-o out.jpg",
            f"brushstream weights pull {ref}   # fetch and check it ahead (then it works offline)", "```"]
    if info.networks:
        out += ["", "### Backbone", ""]
        for name, what in info.networks:
            lic = (known_licences or {}).get(name)
            out.append(f"- {what}: `{name}`" + (f" ({lic}; in Brushstream's weights manifest)" if lic else ""))
    if info.recipe or info.config or info.training:
        out += ["", "### Training recipe", ""]
        if info.recipe and info.recipe.get("command"):
            out += ["```sh", str(info.recipe["command"]), "```", ""]
        if info.recipe:
            body = {k: v for k, v in info.recipe.items() if k != "command"}
            out += ["```json", json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False), "```", ""]
        if info.config:
            out += ["Network configuration:", "", "```json", json.dumps(info.config, sort_keys=True), "```", ""]
        if info.training:
            out += [_table(info.training), ""]
    if info.evaluation:
        out += ["", "### Evaluation", "", _table(info.evaluation), ""]
    if info.provenance:
        out += ["", "### Provenance", ""] + [f"- {k}: {v}" for k, v in info.provenance.items()]
    return Section(filename, info.method, info.licence, "\n".join(out))


def card(repo_id: str, new: Section, existing: str | None = None) -> str:
    """The repository's README.md with ``new`` in place of that file's earlier section (or added at the end)."""
    kept = sections(existing)
    files = [s.file for s in kept]
    if new.file in files:
        kept[files.index(new.file)] = new
    else:
        kept.append(new)
    licences = sorted({hf_licence(s.licence) for s in kept})
    front = ["---", f"license: {licences[0] if len(licences) == 1 else 'other'}"]
    if front[1] == "license: other":
        names = sorted({s.licence for s in kept})
        front.append(f"license_name: {re.sub(r'[^a-z0-9.-]+', '-', '-and-'.join(names).lower()).strip('-')[:60]}")
    front += ["library_name: brushstream", "tags:", "- brushstream", "- style-transfer"]
    front += [f"- {m}" for m in sorted({s.method for s in kept if s.method})] + ["---", ""]
    intro = [f"# {repo_id}", "",
             "Style networks for [Brushstream](https://github.com/brushstream/brushstream), published with "
             "`brushstream weights publish`. Each file's section says what it is, how it was trained and how to load "
             "it pinned to one commit; Brushstream checks the file as safetensors (never a pickle) and against the "
             "digest in the reference before it is used.", "",
             "Licences: " + "; ".join(f"`{s.file}`: {s.licence}" for s in kept) + ".", ""]
    return "\n".join(front + intro) + "\n".join(s.render() for s in kept)
