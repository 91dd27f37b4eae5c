"""Convert the official MicroAST weights (EndyWon/MicroAST, MIT) into the one safetensors file Brushstream bundles.

    python tools/convert_microast.py MICROAST_RELEASE/models

MICROAST_RELEASE/models is the release's folder of four PyTorch files (content_encoder, style_encoder, modulator and
decoder, each ``*_iter_160000.pth.tar``). They are read with ``torch.load(weights_only=True)`` (tensors only, never
pickled code), renamed to core/nets/microast.py's keys, checked (every key used once, every shape the module's, every
value finite) and written atomically, float32, with metadata, to assets/weights/microast_official.safetensors (or
--out). The same release gives the same bytes, so the manifest's sha256 can be checked by rerunning this.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from safetensors.torch import save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

from brushstream.core.errors import BrushstreamError  # noqa: E402
from brushstream.core.hub.weights import BUNDLED_DIR, sha256_file  # noqa: E402
from brushstream.core.io.atomic import atomic_path  # noqa: E402
from brushstream.core.nets.microast import MicroAST  # noqa: E402

ITERATION = 160000
PARTS = ("content_encoder", "style_encoder", "modulator", "decoder")
OUT_NAME = "microast_official.safetensors"
METADATA = {
    "arch": "microast",
    "source": f"EndyWon/MicroAST release, models/{{{','.join(PARTS)}}}_iter_{ITERATION}.pth.tar "
              "(Wang et al., AAAI 2023), keys renamed by tools/convert_microast.py",
    "licence": "MIT",
    "copyright": "Copyright (c) 2022 Zhizhong Wang",
}

# Release key patterns (per part) -> ours, within the part's prefix. The release wraps every convolution in a module
# holding a padding layer and ``conv_layer``; its Sequentials count ReLUs too, hence the even indices.
_ENCODER = [(r"enc1\.(0|2|4|6|8)\.conv_layer\.", lambda m: f"stem.{int(m[1]) // 2}."),
            (r"enc1\.10\.conv([12])\.conv_layer\.", lambda m: f"block1.conv_{'ab'[int(m[1]) - 1]}."),
            (r"enc2\.0\.conv([12])\.conv_layer\.", lambda m: f"block2.conv_{'ab'[int(m[1]) - 1]}.")]
_RULES = {
    "content_encoder": _ENCODER,
    "style_encoder": _ENCODER,
    # weight1/bias1 read the shallow level, weight2/bias2 the deep one.
    "modulator": [(r"(weight|bias)([12])\.0\.conv_layer\.",
                   lambda m: f"{'scale' if m[1] == 'weight' else 'shift'}_{'shallow' if m[2] == '1' else 'deep'}.")],
    # dec1 runs first, on the deep signals; dec2 second, on the shallow ones; dec3 is the upsampling path.
    "decoder": [(r"dec([12])\.conv([12])\.conv_layer\.",
                 lambda m: f"block_{'deep' if m[1] == '1' else 'shallow'}.conv_{'ab'[int(m[2]) - 1]}."),
                (r"dec3\.(1|3|6|8)\.conv_layer\.", lambda m: f"up.{'1368'.index(m[1])}."),
                (r"dec3\.10\.conv_layer\.", lambda m: "out.")],
}


def rename(part: str, key: str) -> str:
    """Our key for the release's ``key`` of ``part``; a key no rule knows is an error."""
    for pattern, to in _RULES[part]:
        m = re.match(pattern + r"(weight|bias)$", key)
        if m:
            return f"{part}.{to(m)}{m[m.lastindex]}"
    raise BrushstreamError(f"{part}: unexpected key {key!r} in the release's file; not the MicroAST release?")


def read_release(folder: Path) -> dict[str, torch.Tensor]:
    """The four files' tensors under our keys, checked against a fresh MicroAST."""
    expected = MicroAST().state_dict()
    out: dict[str, torch.Tensor] = {}
    for part in PARTS:
        path = folder / f"{part}_iter_{ITERATION}.pth.tar"
        if not path.is_file():
            raise BrushstreamError(f"{path}: no such file; give the release's models folder")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:   # pickle, zip and weights_only refusals all differ in type
            raise BrushstreamError(f"{path}: not a tensors-only PyTorch file ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())[:160]})") from None
        if not isinstance(state, dict):
            raise BrushstreamError(f"{path}: holds a {type(state).__name__}, not a state dict")
        for key, tensor in state.items():
            ours = rename(part, key)
            if ours in out:
                raise BrushstreamError(f"{path}: two keys map to {ours}")
            if ours not in expected or tensor.shape != expected[ours].shape:
                raise BrushstreamError(f"{path}: {key} has shape {tuple(tensor.shape)}, MicroAST's {ours} needs "
                                       f"{tuple(expected[ours].shape) if ours in expected else 'no such key'}")
            if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
                raise BrushstreamError(f"{path}: {key} is not finite floating point; the file is damaged")
            out[ours] = tensor.detach().to(torch.float32).contiguous()
    missing = sorted(set(expected) - set(out))
    if missing:
        raise BrushstreamError(f"{folder}: the release files lack {len(missing)} tensors, e.g. {missing[0]}")
    return out


def file_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """The safetensors file, with its metadata keys in sorted order.

    safetensors writes the metadata in hash-map order, which changes from run to run; the header is rewritten with
    the keys sorted (same JSON, same length), so the same release always gives the same bytes and sha256.
    """
    data = save(tensors, metadata=METADATA)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:   # cannot happen (a reordering keeps the length); refuse rather than write a broken file
        raise BrushstreamError("could not rewrite the safetensors header")
    return data[:8] + text.ljust(n) + data[8 + n:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, help="the release's models folder (the four *_iter_160000.pth.tar files)")
    ap.add_argument("-o", "--out", type=Path, default=BUNDLED_DIR / OUT_NAME,
                    help=f"where to write (default: the package's assets/weights/{OUT_NAME})")
    args = ap.parse_args(argv)
    try:
        tensors = read_release(args.models)
        # The module must take them as they are (strict), so a renaming slip fails here, not at stylize time.
        MicroAST().load_state_dict(tensors, strict=True)
        data = file_bytes(tensors)
        with atomic_path(args.out) as tmp:   # a temp file beside the target, renamed over it when complete
            Path(tmp).write_bytes(data)
        sha256 = sha256_file(args.out)
    except BrushstreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(tensors)} tensors, {args.out.stat().st_size} bytes, sha256 {sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
