"""Flying-Chairs-like training pairs made on the fly (Dosovitskiy et al., FlowNet, ICCV 2015, sections 5.2-5.3):
a background photo and 1..K foreground sprites cut from other photos, each layer moved by a random affine motion
(the sprites' motions relative to the background's, as the paper's chairs move relative to a moving camera), with
exact forward flow and occlusion for every pixel of frame 1.

Deviations from Flying Chairs: the sprites are random smooth blobs (a radius 1 + sum_m a_m cos(m t + p_m), m = 2..5,
squeezed up to 2:1 and turned) with hard edges, cut from the other photos of the batch, instead of rendered chairs;
motion ranges are given as fractions of the crop side (background: rotation +-5 deg, zoom +-5%, translation +-6%;
sprites, relative to it: rotation +-15 deg, zoom +-12%, translation +-12%): at 128 px a mean displacement of
about 7 px, 95% under 13 px and a tail to about 25 px, small motions with a long tail like the Chairs'. Photometric
changes are the paper's kinds (section 5.3: contrast, per-channel colour, gamma, additive brightness, Gaussian
noise) at about half its ranges, the same for both frames plus a small relative change and independent noise per
frame.

Rendering is by inverse mapping: frame 1 is the photos themselves (background and sprites in place), frame 2 samples
each layer's photo at the inverse of its motion (grid_sample, reflected at the photo border) and each sprite's mask
analytically at the same place, so ``backward_warp(frame2, flow)`` gives frame 1 wherever frame 1's pixel is visible
in frame 2 (up to bilinear interpolation). A pixel of frame 1 is occluded when its layer's motion takes it out of
the frame or under a higher sprite in frame 2 (the masks are evaluated at the exact moved position).
A ``torch.Generator`` drives every draw: the same generator state gives the same pairs.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

HARMONICS = (2, 3, 4, 5)


def _uniform(rng: torch.Generator, shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=rng)


def _similarity(centre: torch.Tensor, angle: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3): p -> centre + shift + zoom R(angle) (p - centre), on pixel coordinates (x, y)."""
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    m = torch.zeros(*angle.shape, 3, 3)
    m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1] = cos, -sin, sin, cos
    m[..., :2, 2] = centre + shift - (m[..., :2, :2] @ centre.unsqueeze(-1)).squeeze(-1)
    m[..., 2, 2] = 1.0
    return m


def _apply(m: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) affine on (B, 2, H, W) points -> (B, 2, H, W)."""
    return torch.einsum("bij,bjhw->bihw", m[:, :2, :2], points) + m[:, :2, 2, None, None]


def _inside_blob(local: torch.Tensor, amp: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) sprite coordinates -> (B, H, W) bool: inside the blob of radius 1 + sum amp cos(m t + phase)."""
    angle = torch.atan2(local[:, 1], local[:, 0])
    radius = torch.ones_like(angle)
    for i, m in enumerate(HARMONICS):
        radius = radius + amp[:, i, None, None] * torch.cos(m * angle + phase[:, i, None, None])
    return local.pow(2).sum(1) < radius.pow(2)


def _sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` at pixel coordinates (B, 2, H, W) (align_corners=True, reflected borders)."""
    h, w = image.shape[-2:]
    grid = torch.stack((points[:, 0] * (2.0 / max(w - 1, 1)) - 1.0, points[:, 1] * (2.0 / max(h - 1, 1)) - 1.0), -1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def photometric(frame1: torch.Tensor, frame2: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's colour augmentations (section 5.3) at about half its ranges, shared by the pair, plus a small
    relative gain/brightness change for frame 2 and independent Gaussian noise (sigma up to 0.04) per frame."""
    b, dev = frame1.shape[0], frame1.device
    gamma = _uniform(rng, (b, 1, 1, 1), 0.7, 1.5)                 # paper 0.7..1.5
    contrast = _uniform(rng, (b, 1, 1, 1), -0.4, 0.4)             # paper -0.8..0.4
    colour = _uniform(rng, (b, 3, 1, 1), 0.75, 1.33)              # paper 0.5..2 per channel
    brightness = torch.randn((b, 1, 1, 1), generator=rng) * 0.1   # paper sigma 0.2
    gain2 = _uniform(rng, (b, 1, 1, 1), 0.97, 1.03)
    shift2 = _uniform(rng, (b, 1, 1, 1), -0.02, 0.02)
    sigma = _uniform(rng, (b, 1, 1, 1), 0.0, 0.04)                # paper 0..0.04
    noise = torch.randn((2, *frame1.shape), generator=rng) * sigma
    params = [t.to(dev) for t in (gamma, contrast, colour, brightness, gain2, shift2, noise)]
    gamma, contrast, colour, brightness, gain2, shift2, noise = params
    mean = frame1.clamp(0, 1).pow(gamma).mean((1, 2, 3), keepdim=True)
    out = []
    for i, frame in enumerate((frame1, frame2)):
        x = frame.clamp(0, 1).pow(gamma)
        x = (x - mean) * (1 + contrast) + mean
        x = x * colour + brightness
        if i == 1:
            x = x * gain2 + shift2
        out.append((x + noise[i]).clamp(0, 1))
    return out[0], out[1]


def make_pairs(photos: torch.Tensor, rng: torch.Generator, *, max_objects: int = 5, motion: float = 1.0,
               augment: bool = True, still: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) photos in [0, 1] -> (frame1, frame2, flow, occlusion): frames (B, 3, H, W), flow (B, 2, H, W)
    in pixels from frame 1 to frame 2, occlusion (B, 1, H, W) 1 where frame 1's pixel is not visible in frame 2.

    Photo i is pair i's background; its 1..``max_objects`` sprites come from the other photos (a single photo
    lends itself, turned upside down). ``motion`` scales every motion range; ``augment`` adds the colour changes;
    ``still`` is the share of pairs in which nothing moves (zero flow, only the colour changes and noise differ), so a
    network learns that the same picture twice means no motion instead of the data's mean motion.
    """
    b, _, h, w = photos.shape
    dev, k, side = photos.device, max(1, int(max_objects)), float(min(h, w))
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2])
    scale = torch.full((b,), float(motion))
    if still > 0:   # drawn only then, so runs without still pairs keep their pairs
        scale = scale * (torch.rand(b, generator=rng) >= still)
    deg = math.pi / 180 * scale
    # Background (camera) motion about the frame's centre.
    m_bg = _similarity(centre, _uniform(rng, (b,), -5, 5) * deg, 1 + _uniform(rng, (b,), -0.05, 0.05) * scale,
                       _uniform(rng, (b, 2), -0.06, 0.06) * side * scale[:, None])
    # Sprites: how many, whose texture, shape (frame 1 -> unit-blob coordinates) and motion relative to the camera.
    count = torch.randint(1, k + 1, (b,), generator=rng)
    active = torch.arange(k) < count[:, None]                                       # (B, K)
    source = (torch.arange(b)[:, None] + torch.randint(1, max(b, 2), (b, k), generator=rng)) % b
    at = torch.stack((_uniform(rng, (b, k), 0, w - 1), _uniform(rng, (b, k), 0, h - 1)), -1)
    radius = _uniform(rng, (b, k), 0.08, 0.22) * side
    squeeze = _uniform(rng, (b, k), 0.5, 1.0)
    turn = _uniform(rng, (b, k), -math.pi, math.pi)
    amp = _uniform(rng, (b, k, len(HARMONICS)), 0, 1) * torch.tensor([0.35 / m for m in HARMONICS])
    phase = _uniform(rng, (b, k, len(HARMONICS)), -math.pi, math.pi)
    own = _similarity(at, _uniform(rng, (b, k), -15, 15) * deg[:, None], 1 + _uniform(rng, (b, k), -0.12, 0.12)
                      * scale[:, None], _uniform(rng, (b, k, 2), -0.12, 0.12) * side * scale[:, None, None])
    m_obj = m_bg[:, None] @ own                                                      # (B, K, 3, 3)
    to_blob = _similarity(at, -turn, torch.ones(b, k), -at)                           # R(-turn) (p - at)
    to_blob[..., 0, :] /= radius[..., None]
    to_blob[..., 1, :] /= (radius * squeeze)[..., None]
    # The colour changes draw from their own stream, so ``augment`` does not change the geometry.
    colour_rng = torch.Generator().manual_seed(int(torch.randint(2 ** 62, (), generator=rng)))

    motions = torch.cat((m_bg[:, None], m_obj), 1).to(dev)                           # layer 0 = background
    back = torch.inverse(motions)
    to_blob, amp, phase, active = to_blob.to(dev), amp.to(dev), phase.to(dev), active.to(dev)
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32),
                            torch.arange(w, device=dev, dtype=torch.float32), indexing="ij")
    pixels = torch.stack((xs, ys)).expand(b, 2, h, w)

    def covers(j: int, frame2_points: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W) bool: sprite j covers these frame-1 pixels (None) or these frame-2 points."""
        points = pixels if frame2_points is None else _apply(back[:, j + 1], frame2_points)
        return active[:, j, None, None] & _inside_blob(_apply(to_blob[:, j], points), amp[:, j], phase[:, j])

    textures = [photos] + [photos[source[:, j]] if b > 1 else photos.flip(-2) for j in range(k)]
    frame1, label = photos, torch.zeros(b, h, w, dtype=torch.long, device=dev)
    frame2 = _sample(photos, _apply(back[:, 0], pixels))
    for j in range(k):
        in1, in2 = covers(j, None), covers(j, pixels)
        frame1 = torch.where(in1[:, None], textures[j + 1], frame1)
        frame2 = torch.where(in2[:, None], _sample(textures[j + 1], _apply(back[:, j + 1], pixels)), frame2)
        label = torch.where(in1, j + 1, label)
    moved = torch.stack([_apply(motions[:, i], pixels) for i in range(k + 1)], 1)   # (B, K+1, 2, H, W)
    target = moved.gather(1, label[:, None, None].expand(b, 1, 2, h, w))[:, 0]
    flow = target - pixels
    occluded = ~((target[:, 0] >= 0) & (target[:, 0] <= w - 1) & (target[:, 1] >= 0) & (target[:, 1] <= h - 1))
    for j in range(k):
        occluded |= (label < j + 1) & covers(j, target)
    if augment:
        frame1, frame2 = photometric(frame1, frame2, colour_rng)
    return frame1, frame2, flow, occluded[:, None].to(photos.dtype)


def held_out_pairs(folder: str | os.PathLike, count: int, size: int, seed: int = 0, *, batch: int = 4,
                   **options) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` pairs of side ``size`` from the centre crops of a photo folder (cycled), without colour changes by
    default: the same pairs for the same arguments. Pair i's background is photo i mod N."""
    from ..io.image import fixed_crops, list_images

    photos = fixed_crops(folder, size, len(list_images(folder)))
    rng = torch.Generator().manual_seed(seed)
    options = {"augment": False, **options}
    out = []
    for start in range(0, count, batch):
        index = torch.arange(start, min(start + batch, count)) % photos.shape[0]
        out.append(make_pairs(photos[index], rng, **options))
    return tuple(torch.cat(parts) for parts in zip(*out))
