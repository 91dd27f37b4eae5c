"""Frame pairs with known motion for training video networks (ReCoNet's temporal losses).

Two sources, as ReCoNet's own data mixes synthetic and real motion:
- ``synthetic_pairs``: a still photo and the same photo moved by a random smooth flow (a small affine move plus
  low-frequency noise) with a slight illumination change. The flow is exact, and the occlusion mask is where the
  motion leaves the frame.
- ``ClipPairs``: consecutive frames of real clips, with DIS flow (core/flow) and Ruder et al.'s reliability mask.
  Frames before ``first_frame`` are skipped, so the first 60 frames the video benches grade are never trained on.

Flows follow core/ops/warp.py: (B, 2, H, W), from the current frame back to the previous one, so
``backward_warp(previous, flow)`` aligns the previous frame with the current one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..ops.warp import backward_warp, inside_frame, reliable_flow_mask


@dataclass
class FramePairs:
    previous: torch.Tensor   # (B, 3, H, W)
    current: torch.Tensor    # (B, 3, H, W)
    flow: torch.Tensor       # (B, 2, H, W) current -> previous, pixels
    mask: torch.Tensor       # (B, 1, H, W) 1 where the flow is reliable

    def cat(self, other: "FramePairs") -> "FramePairs":
        return FramePairs(*(torch.cat((getattr(self, k), getattr(other, k))) for k in
                            ("previous", "current", "flow", "mask")))


def _uniform(rng: torch.Generator, shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=rng)


def smooth_flow(rng: torch.Generator, batch: int, height: int, width: int, max_shift: float) -> torch.Tensor:
    """Random smooth flows: rotation up to 3 degrees, zoom up to 4%, translation up to ``max_shift`` px, plus
    noise on a 4x4 grid (bicubic) up to half of ``max_shift``: the motion of a hand-held camera or a slow object."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32) - (height - 1) / 2,
                            torch.arange(width, dtype=torch.float32) - (width - 1) / 2, indexing="ij")
    angle = _uniform(rng, (batch, 1, 1), -math.radians(3), math.radians(3))
    zoom = _uniform(rng, (batch, 1, 1), -0.04, 0.04)
    shift = _uniform(rng, (batch, 2, 1, 1), -max_shift, max_shift)
    cos, sin = torch.cos(angle) * (1 + zoom), torch.sin(angle) * (1 + zoom)
    u = cos * xs - sin * ys - xs
    v = sin * xs + cos * ys - ys
    noise = F.interpolate(_uniform(rng, (batch, 2, 4, 4), -0.5, 0.5) * max_shift, size=(height, width),
                          mode="bicubic", align_corners=True)
    return torch.stack((u, v), dim=1) + shift + noise


def synthetic_pairs(frames: torch.Tensor, rng: torch.Generator, max_shift: float) -> FramePairs:
    """(B, 3, H, W) photos as the previous frames; the current frames are them moved by a smooth flow, with a
    random gain (0.9-1.1) and offset (+-0.04), the illumination change ReCoNet's luminance term is about."""
    b, _, h, w = frames.shape
    flow = smooth_flow(rng, b, h, w, max_shift).to(frames.device)
    gain = _uniform(rng, (b, 1, 1, 1), 0.9, 1.1).to(frames.device)
    offset = _uniform(rng, (b, 1, 1, 1), -0.04, 0.04).to(frames.device)
    current = (backward_warp(frames, flow) * gain + offset).clamp(0, 1)
    return FramePairs(frames, current, flow, inside_frame(flow).to(frames.dtype))


class ClipPairs:
    """Consecutive frame pairs of real clips with DIS flow and its reliability mask, computed once."""

    def __init__(self, clips: list[Path], first_frame: int = 60, short_side: int = 180, max_pairs_per_clip: int = 40):
        from ..flow import get_flow
        from ..io.video import VideoReader

        self.pairs: list[tuple[torch.Tensor, ...]] = []
        dis = get_flow("dis")
        for path in clips:
            previous, taken = None, 0
            with VideoReader(path) as reader:
                for index, frame in enumerate(reader):
                    if index < first_frame:
                        continue
                    image = frame.image if hasattr(frame, "image") else frame
                    image = _shrink(image.float(), short_side)
                    if previous is not None:
                        backward, forward = dis(image, previous), dis(previous, image)
                        self.pairs.append((previous, image, backward, reliable_flow_mask(backward, forward)))
                        taken += 1
                        if taken >= max_pairs_per_clip:
                            break
                    previous = image
        if not self.pairs:
            raise BrushstreamError(f"no frame pairs after frame {first_frame} in {', '.join(map(str, clips))}")

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, rng: torch.Generator, count: int, crop: int, device: torch.device) -> FramePairs:
        """``count`` random pairs, each a random ``crop`` x ``crop`` window (the same in both frames)."""
        picked = []
        for _ in range(count):
            previous, current, flow, mask = self.pairs[int(torch.randint(len(self.pairs), (), generator=rng))]
            h, w = current.shape[-2:]
            size = min(crop, h, w)
            top = int(torch.randint(h - size + 1, (), generator=rng))
            left = int(torch.randint(w - size + 1, (), generator=rng))
            window = (..., slice(top, top + size), slice(left, left + size))
            parts = [t[window] for t in (previous, current, flow, mask)]
            if size != crop:
                parts = [F.interpolate(parts[0], size=(crop, crop), mode="bilinear", align_corners=False),
                         F.interpolate(parts[1], size=(crop, crop), mode="bilinear", align_corners=False),
                         F.interpolate(parts[2], size=(crop, crop), mode="bilinear", align_corners=False) * (crop / size),
                         (F.interpolate(parts[3], size=(crop, crop), mode="bilinear", align_corners=False) > 0.99).float()]
            picked.append(parts)
        return FramePairs(*(torch.cat([p[i] for p in picked]).to(device) for i in range(4)))


def clip_pairs_for(clips: str, clip_fraction: float) -> ClipPairs | None:
    """The real pairs a video recipe mixes in: ``clip_fraction`` (0..1) of each batch from the .mp4 files of the
    folder ``clips``; None when either is unset. One line naming the folder when it holds no clip."""
    if clip_fraction > 1:
        raise BrushstreamError(f"--clip-fraction must be at most 1, got {clip_fraction}")
    if clip_fraction <= 0 or not clips:
        return None
    found = sorted(Path(clips).glob("*.mp4"))
    if not found:
        raise BrushstreamError(f"{clips}: no .mp4 clips for --clip-fraction {clip_fraction}")
    return ClipPairs(found)


def clip_pair_count(clip_pairs: ClipPairs | None, batch: int, clip_fraction: float, most: int | None = None) -> int:
    """How many of a batch's ``batch`` pairs come from the clips: ``clip_fraction`` of it (at most ``most``), none
    without clip pairs."""
    if clip_pairs is None:
        return 0
    count = int(round(batch * clip_fraction))
    return count if most is None else min(most, count)


def _shrink(image: torch.Tensor, short_side: int) -> torch.Tensor:
    if image.dim() == 3:
        image = image.unsqueeze(0)
    h, w = image.shape[-2:]
    if min(h, w) <= short_side:
        return image
    scale = short_side / min(h, w)
    return F.interpolate(image, size=(round(h * scale), round(w * scale)), mode="area")
