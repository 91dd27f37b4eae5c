"""A teacher for feature-level distillation: any registered style method (with its options) stylizes each
training crop, and the student is pulled toward the teacher's output in VGG16 feature space (not pixels: a
Johnson net regressing AdaIN's outputs with an L1 pixel loss learnt a blur, Gram ratio 0.99).

Teacher outputs are cached on disk, content-addressed: the key of a crop is the sha256 of the teacher's
identity (method, options, the style file's sha256) and the crop's own bytes. Crops are fixed by the seed and
the data position (data.py), so a second run with the same seed and crop size, whatever its loss weights or
learning rate, finds every teacher output already made. Each entry is written atomically (a kill leaves a
hidden temporary file, never a short entry), and an entry that does not read back as a whole uint8 image of
the crop's size counts as a miss and is made again.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import BrushstreamError
from ..hub.weights import sha256_file
from ..io.atomic import atomic_path
from ..io.image import load_image
from ..methods import build
from ..methods.registry import get
from .content_sets import cache_root


def parse_teacher_options(text: str) -> dict[str, str]:
    """``NAME=VALUE,NAME=VALUE`` -> a dict (values stay text; the method's declared options parse them)."""
    options = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BrushstreamError(f"--teacher-options: expected NAME=VALUE items, got {item!r}")
        options[name.strip().replace("-", "_")] = value.strip()
    return options


class TeacherCache:
    """Teacher outputs on disk, one uint8 safetensors file per crop, under a folder per teacher identity."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, key: str, shape: tuple[int, ...]) -> torch.Tensor | None:
        path = self._path(key)
        try:
            image = load_file(str(path))["image"]
        except (SafetensorError, KeyError, OSError, ValueError):
            image = None
        if image is None or image.dtype != torch.uint8 or tuple(image.shape) != shape:
            self.misses += 1
            return None
        self.hits += 1
        return image.float() / 255.0

    def put(self, key: str, image: torch.Tensor) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"image": (image.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()}, tmp)


class Teacher:
    """A registered method stylizing crops with one style, through the cache."""

    def __init__(self, method: str, options: str, style: str | Path, style_size: int, cache: bool = True,
                 cache_folder: str | Path | None = None):
        cls = get(method)
        if not cls.capabilities.arbitrary_style:
            raise BrushstreamError(f"--teacher {method}: a teacher must take any style image (an arbitrary-style "
                                   f"method such as adain, wct or lst)")
        given = parse_teacher_options(options)
        self.model = build(method, **given)   # the registry checks the options (one line naming a bad one)
        self.code = self.model.encode_style([load_image(Path(style), long_side=style_size).image])
        identity = json.dumps({"method": method, "options": given, "style": sha256_file(style),
                               "style_size": style_size}, sort_keys=True)
        self.identity = hashlib.sha256(identity.encode()).hexdigest()
        folder = Path(cache_folder) if cache_folder else cache_root() / "teachers"
        self.cache = TeacherCache(folder / self.identity[:16]) if cache else None

    def _key(self, crop: torch.Tensor) -> str:
        data = (crop.clamp(0, 1) * 255).round().to(torch.uint8).contiguous().numpy().tobytes()
        return hashlib.sha256(self.identity.encode() + str(tuple(crop.shape)).encode() + data).hexdigest()

    @torch.no_grad()
    def outputs(self, content: torch.Tensor) -> torch.Tensor:
        """The teacher's stylization of each crop of ``content`` (B, 3, H, W), from the cache where it can."""
        results = []
        for crop in content.float().cpu():
            key = self._key(crop) if self.cache is not None else ""
            cached = self.cache.get(key, tuple(crop.shape)) if self.cache is not None else None
            if cached is None:
                with torch.autocast("cpu", enabled=False):
                    cached = self.model.stylize(crop.unsqueeze(0), self.code)[0].clamp(0, 1)
                if self.cache is not None:
                    self.cache.put(key, cached)
                    cached = (cached * 255).round() / 255   # what a hit would give: the same run either way
            results.append(cached)
        return torch.stack(results).to(content.device)
