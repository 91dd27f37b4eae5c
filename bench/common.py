"""Shared by the benchmark scripts: where the data is, and how to load the evaluation photos."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from brushstream.core.image import load_image
from brushstream.core.ops.resize import resize_long_side

SHARED = Path(__file__).resolve().parents[2] / "shared"
# Offline machines: the VGG16 backbone (not bundled) comes from the shared weights folder.
os.environ.setdefault("BRUSHSTREAM_WEIGHTS_DIR", str(SHARED / "weights"))
CONTENT_EVAL = SHARED / "data" / "content_eval"
STYLES = SHARED / "data" / "styles"
EVAL_STYLES = ("starry_night.jpg", "the_great_wave.jpg", "composition_vii.jpg")


def photo(path: Path, long_side: int):
    return resize_long_side(load_image(path).image, long_side)


def eval_photos() -> list[Path]:
    return sorted(CONTENT_EVAL.glob("*.jpg"))


def spread(values: list[float]) -> str:
    """Median and spread (min..max) of repeated measurements."""
    return f"median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
