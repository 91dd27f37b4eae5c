"""Ship a network trained by `brushstream train`: copy it into assets/weights (bundled) or leave it for the Hub,
and add its manifest entry, taking the recipe and training figures from the sidecar the loop wrote.

    python tools/ship_weights.py runs/johnson_starry_night.safetensors --name johnson_starry_night \
        --wall-time "52 min on 1 CPU core" [--hub-only]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from brushstream.core.hub.weights import BUNDLED_DIR, register  # noqa: E402
from brushstream.core.io.atomic import atomic_path  # noqa: E402

ATTRIBUTION = ("trained by the Brushstream developers with `brushstream train` on the BSDS500 photos (Arbeláez et al., "
               "research use) with the VGG16 ImageNet loss network (CC BY 4.0); style images: {styles} (see "
               "shared/data/SOURCES.md)")


def flag(name: str, value) -> str:
    """One recipe field as the `brushstream train` flag that sets it."""
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return option if value else "--no-" + option[2:]
    return f"{option} {','.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"


def cli_fields(command: str) -> set[str]:
    """Recipe fields `brushstream train NAME` takes as flags: the recorded command must run as written, so fields
    the CLI does not expose (fixed weights such as --vgg16) and --style (repeated below) are left out."""
    from dataclasses import fields

    from brushstream.core.train.catalogue import get_recipe
    recipe = get_recipe(command.split()[-1])
    return {f.name for f in fields(recipe) if f.metadata.get("cli", True)} - {"style", "content_dir"}


def _as_float16(src: Path) -> Path:
    """A float16 copy of ``src`` beside it, metadata kept (the sidecar's sha256 is the float32 file's)."""
    from safetensors.torch import save_file

    from brushstream.core.hub.weights import load_state_dict
    tensors, meta = load_state_dict(src)
    out = src.with_name(src.stem + ".float16.safetensors")
    with atomic_path(out) as tmp:
        save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}, str(tmp),
                  metadata={**meta, "storage": "float16"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--name", required=True)
    ap.add_argument("--wall-time", required=True, help="how long training took, and on what")
    ap.add_argument("--hub-only", action="store_true", help="too large to bundle: manifest entry only")
    ap.add_argument("--convention", default="RGB 0-1 in, RGB 0-1 out", help="what the network takes and gives")
    ap.add_argument("--float16", action="store_true", help="store the floating tensors in float16 (loading casts back; "
                    "halves a bundled file)")
    ap.add_argument("--attribution", help="the entry's attribution when the standard one (BSDS500 photos, VGG16 loss "
                    "network, style images) does not describe what the network was trained on")
    ap.add_argument("--method", help="the method that loads it, when not the recipe's (a decoder another method uses)")
    args = ap.parse_args()
    src = Path(args.file)
    sidecar = json.loads(src.with_name(src.stem + ".manifest.json").read_text())
    if args.float16:
        src = _as_float16(src)
    target = BUNDLED_DIR / f"{args.name}.safetensors"
    if not args.hub_only:
        with atomic_path(target) as tmp:
            shutil.copyfile(src, tmp)
    else:
        target = src.with_name(f"{args.name}.safetensors")
        if target.resolve() != src.resolve():
            shutil.copyfile(src, target)
    # Recipes that train on a style folder (LST) list their styles in the file's metadata, not in --style.
    from brushstream.core.hub.weights import load_state_dict
    listed = [Path(s).stem for s in sidecar["recipe"].get("style", ())]
    styles = ", ".join(listed or json.loads(load_state_dict(src)[1].get("styles", "[]"))) or "none"
    command = sidecar["recipe"]["command"]
    if len(command.split()) == 3:   # a sidecar from before the loop wrote whole commands: "brushstream train NAME"
        flags = cli_fields(command)
        command += " " + " ".join(flag(k, v) for k, v in sidecar["recipe"].items() if k in flags and v != "")
        command += "".join(f" --style {s}" for s in sidecar["recipe"].get("style", ()))
    init_from = load_state_dict(src)[1].get("init_from", "")
    # a fine-tune: the file it started from is part of the recipe ("source sha256:...")
    if init_from and "--init-from" not in command:
        command += f" --init-from {init_from.split(' sha256:')[0]}"
    # What the manifest says of the file's role, its styles and whether the live filter loads it: the sidecar's,
    # and a reshipped name keeps its live mark.
    from brushstream.core.hub.weights import load_manifest
    before = load_manifest().get(args.name)
    fields = {k: sidecar[k] for k in ("role", "styles") if k in sidecar}
    if before is not None and before.live:
        fields["live"] = True
    entry = register(target, name=args.name, method=args.method or sidecar["method"], licence="MIT", **fields,
                     attribution=args.attribution or ATTRIBUTION.format(styles=styles), convention=args.convention,
                     description=sidecar["description"], bundled=not args.hub_only,
                     recipe={**sidecar["recipe"], "command": command},
                     training={**sidecar["training"], "wall_time": args.wall_time,
                               # a name's file changes when it is retrained: the hash says which one it started from
                               **({"started_from": Path(init_from).name} if init_from else {})})
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
