"""A frame counter drawn into a frame as a row of black and white blocks, and read back from a screenshot.

The end-to-end latency into OBS is measured with it (the frame counter method): the filter stamps each frame it
sends and remembers when; a screenshot of the OBS source taken at time t shows stamp n, so the frame took
t - sent(n) to reach OBS's output. Blocks are large enough to survive H.264 and a screenshot at a quarter of the
size. Layout: a white and a black guard block, ``BITS`` bits (most significant first), an even-parity block.
"""
from __future__ import annotations

import numpy as np

BITS = 20
BLOCKS = BITS + 3
WHITE, BLACK = 235, 16


def block_size(width: int) -> int:
    return max(width // 40, 4)


def stamp(frame: np.ndarray, counter: int) -> np.ndarray:
    """Draw ``counter`` (mod 2**BITS) into the top-left corner of an RGB uint8 frame, in place; returns it."""
    b = block_size(frame.shape[1])
    if BLOCKS * b > frame.shape[1] or b > frame.shape[0]:
        raise ValueError(f"a {frame.shape[1]}x{frame.shape[0]} frame is too small for a frame counter")
    counter %= 1 << BITS
    bits = [(counter >> (BITS - 1 - i)) & 1 for i in range(BITS)]
    for i, bit in enumerate([1, 0, *bits, sum(bits) % 2]):
        frame[:b, i * b:(i + 1) * b] = WHITE if bit else BLACK
    return frame


def read_stamp(image: np.ndarray, frame_width: int) -> int | None:
    """The counter in a screenshot ``image`` (H, W, 3 uint8) of a frame ``frame_width`` px wide, or None when the
    guard or the parity does not check (no stamp, or a frame caught mid-update)."""
    scale = image.shape[1] / frame_width
    b = block_size(frame_width) * scale
    luma = image[..., :3].astype(np.float32).mean(axis=-1)
    values = []
    for i in range(BLOCKS):
        # The centre half of each block: edges are blurred by the codec and the screenshot's scaling.
        y0, y1 = int(b * 0.25), max(int(b * 0.75), int(b * 0.25) + 1)
        x0, x1 = int((i + 0.25) * b), max(int((i + 0.75) * b), int((i + 0.25) * b) + 1)
        values.append(float(luma[y0:y1, x0:x1].mean()))
    threshold = (WHITE + BLACK) / 2
    bits = [int(v > threshold) for v in values]
    if bits[:2] != [1, 0] or sum(bits[2:2 + BITS]) % 2 != bits[-1]:
        return None
    # A block far from both levels means a blend of two frames: refuse rather than guess.
    if any(abs(v - threshold) < (WHITE - BLACK) * 0.2 for v in values):
        return None
    return int("".join(map(str, bits[2:2 + BITS])), 2)
