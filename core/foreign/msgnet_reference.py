"""MSG-Net's released network (Zhang & Dana; github.com/zhanghang1989/PyTorch-Multi-Style-Transfer, ``21styles.model``):
a plain state dict of the authors' ``Net`` (experiments/net.py), rebuilt as core/nets/msgnet_reference.py.

The layout, as the authors' code saves it: the encoder ``model1`` sits inside ``model`` as its first layer and the
Inspiration layer is both ``ins`` and ``model.1``, so ``model1.*`` and ``model.0.*`` hold the same tensors, as do
``ins.weight`` and ``model.1.weight``; either copy is enough, and where both are there they must agree. The instance
norms have no parameters, but files saved by PyTorch before 0.4 carry their ``running_mean``/``running_var`` buffers
(never used: instance norm normalises with each image's own statistics; the authors' loader deletes them); they
count as explained and are dropped. ``ngf`` and the number of bottleneck blocks come from the shapes and the layer
indices (the release: ngf 128, 6 blocks).

The file holds no style names: the network takes any style image (its Gram matrix at the Inspiration layer), and
the 21 paintings it was trained on are images in the authors' repository, not tensors in the file. So the converted
file lists no learned styles (``styles`` is ``[]``) and is used with ``--style IMAGE``.
"""
from __future__ import annotations

import re

import torch

from ..nets.msgnet_reference import EXPANSION, FIRST_INNER, STEM, UP_INNER
from . import Converted, ForeignFormat

BGR = [2, 1, 0]
_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _bottleneck(ref: str, own: str, cin: int, inner: int, kind: str, params: dict, norms: dict) -> None:
    """The reference names of one (up-)bottleneck block -> (own name, shape); ``kind``: down, up or plain."""
    cout = inner * EXPANSION
    if kind != "plain":
        short = f"{ref}residual_layer.conv2d." if kind == "up" else f"{ref}residual_layer."
        params[f"{short}weight"] = (f"{own}shortcut.conv.weight", (cout, cin, 1, 1))
        params[f"{short}bias"] = (f"{own}shortcut.conv.bias", (cout,))
    for index, name, c_in, c_out, k in ((2, "reduce", cin, inner, 1), (5, "conv", inner, inner, 3),
                                        (8, "expand", inner, cout, 1)):
        layer = f"{ref}conv_block.{index}." + ("conv2d." if index == 5 else "")
        params[f"{layer}weight"] = (f"{own}{name}.conv.weight", (c_out, c_in, k, k))
        params[f"{layer}bias"] = (f"{own}{name}.conv.bias", (c_out,))
    for index, c in ((0, cin), (3, inner), (6, inner)):
        norms[f"{ref}conv_block.{index}."] = c


def _layout(ngf: int, blocks: int) -> tuple[dict, dict]:
    """Canonical reference name -> (own name, shape) for the parameters, and norm prefix -> channels, with the
    encoder and the Inspiration layer under ``model.0`` / ``model.1`` (their aliases are added by ``_aliases``)."""
    params: dict[str, tuple[str, tuple[int, ...]]] = {}
    norms: dict[str, int] = {}
    wide = ngf * EXPANSION
    params["model.0.0.conv2d.weight"] = ("stem.conv.weight", (STEM, 3, 7, 7))
    params["model.0.0.conv2d.bias"] = ("stem.conv.bias", (STEM,))
    norms["model.0.1."] = STEM
    _bottleneck("model.0.3.", "down1.", STEM, FIRST_INNER, "down", params, norms)
    _bottleneck("model.0.4.", "down2.", FIRST_INNER * EXPANSION, ngf, "down", params, norms)
    params["model.1.weight"] = ("inspiration.weight", (1, wide, wide))
    for i in range(blocks):
        _bottleneck(f"model.{2 + i}.", f"body.{i}.", wide, ngf, "plain", params, norms)
    _bottleneck(f"model.{2 + blocks}.", "up1.", wide, UP_INNER[0], "up", params, norms)
    _bottleneck(f"model.{3 + blocks}.", "up2.", UP_INNER[0] * EXPANSION, UP_INNER[1], "up", params, norms)
    norms[f"model.{4 + blocks}."] = UP_INNER[1] * EXPANSION
    params[f"model.{6 + blocks}.conv2d.weight"] = ("head.conv.weight", (3, UP_INNER[1] * EXPANSION, 7, 7))
    params[f"model.{6 + blocks}.conv2d.bias"] = ("head.conv.bias", (3,))
    return params, norms


def _aliases(name: str) -> tuple[str, ...]:
    """Every name the reference saves one tensor under: the encoder twice, the Inspiration weight twice."""
    if name.startswith("model.0."):
        return name, "model1." + name.removeprefix("model.0.")
    if name == "model.1.weight":
        return name, "ins.weight"
    return (name,)


def _infer(tensors: dict[str, torch.Tensor]) -> tuple[int, int] | None:
    """(ngf, blocks) from the shapes and layer indices, or None when the file gives no hint of them."""
    ngf = None
    for key in ("model.1.weight", "ins.weight"):
        t = tensors.get(key)
        if t is not None and t.dim() == 3 and t.shape[-1] % EXPANSION == 0:
            ngf = t.shape[-1] // EXPANSION
            break
    for key in ("model.0.4.conv_block.2.weight", "model1.4.conv_block.2.weight"):
        t = tensors.get(key)
        if ngf is None and t is not None and t.dim() == 4:
            ngf = t.shape[0]
    indices = {int(m.group(1)) for k in tensors if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    blocks = len({i for i in indices if i >= 2}) - 2
    if not ngf or blocks < 0:
        return None
    return ngf, blocks


def _analyse(tensors: dict[str, torch.Tensor]):
    """(share explained, ngf, blocks, {canonical name: the tensor to use}): the share is 1.0 only when every
    parameter is there in the right shape and duplicated copies agree."""
    found = _infer(tensors) if isinstance(tensors, dict) and tensors else None
    if found is None:
        return 0.0, None, None, {}
    ngf, blocks = found
    params, norms = _layout(ngf, blocks)
    explained, missing, chosen = set(), 0, {}
    for name, (_, shape) in params.items():
        copies = [a for a in _aliases(name) if a in tensors and tuple(tensors[a].shape) == shape]
        if not copies:
            missing += 1
            continue
        if all(torch.equal(tensors[copies[0]], tensors[a]) for a in copies[1:]):
            explained.update(copies)
            chosen[name] = tensors[copies[0]]
        else:
            missing += 1   # copies that disagree: the file is not one network
    for prefix, channels in norms.items():   # parameterless norms: legacy running statistics, never used
        for base in _aliases(prefix):
            for stat in _STATS:
                t = tensors.get(base + stat)
                if t is not None and tuple(t.shape) == ((channels,) if stat != "num_batches_tracked" else ()):
                    explained.add(base + stat)
    score = len(explained) / (len(tensors) + missing)
    return score, ngf, blocks, chosen


def match(tensors) -> float:
    return _analyse(tensors)[0]


def convert(tensors) -> Converted:
    score, ngf, blocks, chosen = _analyse(tensors)
    if score < 1.0:
        raise ValueError(f"the layout explains {score:.0%} of the file")
    params, _ = _layout(ngf, blocks)
    own = {params[name][0]: t.detach().float().clone() for name, t in chosen.items()}
    # BGR 0-255 in and out, folded into the first and last convolutions (exact: both are linear in the pixels).
    own["stem.conv.weight"] = own["stem.conv.weight"][:, BGR] * 255.0
    own["head.conv.weight"] = own["head.conv.weight"][BGR] / 255.0
    own["head.conv.bias"] = own["head.conv.bias"][BGR] / 255.0
    return Converted(method="msgnet", arch="msgnet_reference", role="model", tensors=own,
                     config={"ngf": ngf, "blocks": blocks}, metadata={"styles": "[]"})


FORMAT = ForeignFormat(
    name="msgnet_reference",
    summary="MSG-Net's released multi-style network (21styles.model): any style image, via its Gram matrix",
    source="github.com/zhanghang1989/PyTorch-Multi-Style-Transfer (Zhang & Dana, MSG-Net, ECCV Workshops 2018)",
    licence="MIT (Copyright (c) 2017 Hang Zhang; keep the authors' names, do not use them to endorse derived work)",
    convention="BGR 0-255 in (content and style), BGR 0-255 out",
    reader="state_dict",
    suffixes=(".model", ".pth"),
    match=match,
    convert=convert,
)
