"""Training images held in memory as uint8 and cut into random crops (the photo folders are small)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import BrushstreamError
from ..image import list_images

class RandomCrops:
    """Random square crops (with horizontal flips) from images whose shorter side is resized to ``short_side``."""

    def __init__(self, folder: str | Path, crop: int = 192, short_side: int | None = None, seed: int = 0):
        self.crop = crop
        self.images = []
        for path in list_images(folder):
            im = Image.open(path).convert("RGB")
            if short_side:
                scale = short_side / min(im.size)
                im = im.resize((max(crop, round(im.width * scale)), max(crop, round(im.height * scale))),
                               Image.LANCZOS)
            if min(im.size) >= crop:
                self.images.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous())
        if not self.images:
            raise BrushstreamError(f"{folder}: no image is at least {crop} px on its shorter side")
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.gen))

    def batch(self, size: int) -> torch.Tensor:
        out = []
        for _ in range(size):
            im = self.images[self._randint(len(self.images))]
            y = self._randint(im.shape[1] - self.crop + 1)
            x = self._randint(im.shape[2] - self.crop + 1)
            patch = im[:, y:y + self.crop, x:x + self.crop]
            if self._randint(2):
                patch = patch.flip(2)
            out.append(patch)
        return torch.stack(out).float() / 255.0

    def state(self) -> torch.Tensor:
        return self.gen.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.gen.set_state(state)
