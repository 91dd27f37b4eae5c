"""Training data: photo folders through a torch DataLoader, deterministic and resumable by position.

Every sample is addressed by its global position in the stream of samples (step * global batch + offset).
The position fixes which photo it is (a seeded permutation per epoch) and its augmentation (a generator
seeded by seed and position), so the data does not depend on worker count, on process count (each DDP rank
reads its own slice of the global batch) or on where a run was resumed: the checkpoint stores the position.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import BrushstreamError
from ..io.image import list_images, load_image
from .content_sets import style_set_folder
from .recipe import hp

_MIX = 1_000_003  # keeps (seed, position) generator seeds apart


def _sample_generator(seed: int, position: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * _MIX + position)


class PhotoCrops(Dataset):
    """Square random crops of a photo folder (shorter side scaled to ``crop`` x [1, ``max_zoom``], random
    horizontal flip), as float (3, crop, crop) in [0, 1]. Indexed by ``(photo index, position)``."""

    def __init__(self, folder: str | os.PathLike, crop: int, seed: int = 0, max_zoom: float = 1.25):
        self.paths = list_images(folder)
        self.crop, self.seed, self.max_zoom = crop, seed, max_zoom

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        index, position = key
        gen = _sample_generator(self.seed, position)
        zoom = 1.0 + (self.max_zoom - 1.0) * float(torch.rand((), generator=gen))
        try:
            with Image.open(self.paths[index]) as im:
                im = im.convert("RGB")
                scale = self.crop * zoom / min(im.size)
                size = (max(self.crop, round(im.width * scale)), max(self.crop, round(im.height * scale)))
                im = im.resize(size, Image.BICUBIC)
                arr = np.asarray(im)
        except OSError as exc:
            raise BrushstreamError(f"{self.paths[index]}: unreadable training image ({exc})") from None
        y = int(torch.randint(arr.shape[0] - self.crop + 1, (), generator=gen))
        x = int(torch.randint(arr.shape[1] - self.crop + 1, (), generator=gen))
        patch = torch.from_numpy(arr[y:y + self.crop, x:x + self.crop].copy()).permute(2, 0, 1)
        if int(torch.randint(2, (), generator=gen)):
            patch = patch.flip(2)
        return patch.float() / 255.0


class PositionSampler(Sampler):
    """Yields ``(photo index, position)`` for this rank from ``start`` on, forever.

    Position p is photo ``perm_e[p % N]`` of epoch e = p // N (a permutation seeded by seed and epoch).
    Rank r of ``world`` takes positions ``step * global_batch + r * local_batch + j``.
    """

    def __init__(self, size: int, seed: int, global_batch: int, start_step: int = 0, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise BrushstreamError(f"the batch ({global_batch}) must divide evenly over {world} processes")
        self.size, self.seed, self.global_batch = size, seed, global_batch
        self.start_step, self.rank, self.world = start_step, rank, world
        self.local_batch = global_batch // world
        self._perms: dict[int, torch.Tensor] = {}

    def _photo(self, position: int) -> int:
        epoch = position // self.size
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.size, generator=_sample_generator(self.seed + 1, epoch))}
        return int(self._perms[epoch][position % self.size])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.start_step
        while True:
            first = step * self.global_batch + self.rank * self.local_batch
            for position in range(first, first + self.local_batch):
                yield self._photo(position), position
            step += 1


def photo_loader(dataset: PhotoCrops, global_batch: int, start_step: int = 0, rank: int = 0, world: int = 1,
                 workers: int = 0) -> Iterator[torch.Tensor]:
    """An endless iterator of this rank's batches from ``start_step`` on."""
    sampler = PositionSampler(len(dataset), dataset.seed, global_batch, start_step, rank, world)
    loader = DataLoader(dataset, batch_size=sampler.local_batch, sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=2 if workers else None)
    return iter(loader)


# Styles no trained file has learned from (eight, so every arbitrary-style method is judged on paintings it never
# saw): recipes that take a style folder leave them out by default, and the benches report them apart.
UNSEEN_STYLES = ("candy", "feathers", "la_muse", "contrast_of_forms", "small_worlds_i", "picasso_self_portrait",
                 "picasso_seated_nude", "rain_princess")


def style_dir_hp():
    return hp("", help="folder of training styles, used when no --style is given")


def held_out_hp():
    return hp(UNSEEN_STYLES, help="styles (file names without extension) of --style-dir kept out of training for "
              "evaluation: " + ", ".join(UNSEEN_STYLES))


def style_zoom_hp(paper: str = ""):
    return hp((1.0, 2.0), paper=paper, help="the style's shorter side is scaled to the crop size times a factor "
              "drawn from this range, then cropped like the content")


def training_style_paths(style: tuple[str, ...], style_dir: str, held_out: tuple[str, ...],
                         style_set: str = "") -> list[Path]:
    """The --style images, or every image of --style-dir and of the manifest's style set ``style_set`` (fetched,
    verified and cached) except the held-out ones (file names without extension), sorted by file name: the order of
    one folder holding both (a name in both is --style-dir's image). Either source may be empty, not both."""
    if style:
        return [Path(s) for s in style]
    if not style_dir and not style_set:
        raise BrushstreamError("no training styles: give --style FILE (repeat it) or --style-dir FOLDER")
    if style_dir and not Path(style_dir).is_dir():
        raise BrushstreamError(f"{style_dir}: no such style folder (--style-dir)")
    pool = {p.name: p for p in list_images(style_set_folder(style_set))} if style_set else {}
    if style_dir:
        try:
            pool.update((p.name, p) for p in list_images(style_dir))
        except BrushstreamError:   # it holds no images: fine beside a style set
            if not style_set:
                raise
    paths = sorted((p for p in pool.values() if p.stem not in held_out), key=lambda p: p.name)
    if not paths:
        where = " and ".join(filter(None, (style_dir, style_set and f"the style set {style_set}")))
        raise BrushstreamError(f"{where}: no training style images (all held out or none there)")
    return paths


def check_zoom(zoom: tuple[float, ...]) -> None:
    if len(zoom) != 2 or not 0 < zoom[0] <= zoom[1]:
        raise BrushstreamError(f"--style-zoom must be two factors LOW,HIGH with 0 < LOW <= HIGH, "
                               f"got {','.join(map(str, zoom))}")


def random_style_crop(style: torch.Tensor, size: int, zoom: tuple[float, float], rng: torch.Generator) -> torch.Tensor:
    """A ``size`` px square of ``style`` (1, 3, H, W) at a random scale and place (AdaIN's and LST's style
    augmentation): the shorter side is scaled to ``size`` times a factor drawn from ``zoom``, then cropped."""
    lo, hi = zoom
    factor = lo + (hi - lo) * float(torch.rand((), generator=rng))
    h, w = style.shape[-2:]
    scale = size * factor / min(h, w)
    full = (max(size, round(h * scale)), max(size, round(w * scale)))
    x = torch.nn.functional.interpolate(style, size=full, mode="bilinear", align_corners=False,
                                        antialias=scale < 1).clamp(0, 1)
    top = int(torch.randint(full[0] - size + 1, (), generator=rng))
    left = int(torch.randint(full[1] - size + 1, (), generator=rng))
    return x[..., top:top + size, left:left + size]


def load_styles(paths: list[str | os.PathLike], long_side: int) -> list[torch.Tensor]:
    """Style images (1, 3, H, W) with their longer side at ``long_side``; a bad file is one clear error."""
    if not paths:
        raise BrushstreamError("no style image given (--style FILE)")
    return [load_image(Path(p), long_side=long_side).image for p in paths]
