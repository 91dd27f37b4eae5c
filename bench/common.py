"""Shared by the benchmark scripts: where the data is, and how to load the evaluation photos."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

from brushstream.core.io.image import load_image
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


def paired_interval(mine: list[float], theirs: list[float], statistic: str = "ratio", resamples: int = 2000,
                    seed: int = 0) -> dict[str, float]:
    """A paired bootstrap over the photos (both lists in the same photo order): the ratio of the means
    (``ratio``) or the mean difference (``difference``), with its 95% interval. Resampling photos, not pixels,
    keeps each photo's two outputs together, which is what makes the comparison fair."""
    import numpy as np

    a, b = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired_interval needs two lists of the same, nonzero length")

    def stat(x, y):
        return x.mean(axis=-1) / y.mean(axis=-1) if statistic == "ratio" else (x - y).mean(axis=-1)

    picks = np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size))
    draws = stat(a[picks], b[picks])
    return {"value": float(stat(a, b)), "low": float(np.percentile(draws, 2.5)),
            "high": float(np.percentile(draws, 97.5)), "photos": int(a.size)}
