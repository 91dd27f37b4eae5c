"""`brushstream eval`: stylize photo x style pairs with several methods, measure them, write a report.

The report is JSON (per pair and per method: Gram and mean/std ratios, content distance, seconds, plus
the means) and a comparison sheet image: one row per pair, columns content, style, then each method.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable, Collection, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from .api import prepare_styles
from .io.atomic import atomic_path
from .io.image import load_image, save_image, to_uint8
from .methods import StyleMethod, build
from .metrics import QualityMetrics
from .ops.resize import resize_long_side

Runner = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def method_runner(model: StyleMethod, precision: str = "fp32", strength: float = 1.0) -> Runner:
    """content, style -> output with a style code cached per style tensor."""
    cache: dict[int, object] = {}

    def run(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        key = id(style)
        if key not in cache:
            cache[key] = model.encode_style([style])
        return model.stylize(content, cache[key], precision=precision, strength=strength)
    return run


def summarise(rows: dict[str, dict]) -> dict[str, float]:
    keys = ("gram_ratio", "meanstd_ratio", "content", "seconds")
    return {k: statistics.mean(r[k] for r in rows.values()) for k in keys if rows}


def evaluate(runners: dict[str, Runner], contents: Sequence[Path], styles: Sequence[Path], size: int = 384,
             report: dict | None = None, on_pair: Callable[[dict], None] | None = None,
             keep_outputs: bool | Collection[str] = True, metrics: QualityMetrics | None = None):
    """Run every method on every (content, style) pair; pairs already in ``report`` are skipped (resumable).

    ``keep_outputs``: return every output (True), none (False), or only those of these content file names (the
    pictures a comparison sheet shows: a resumed run then re-runs only those, not every measured pair)."""
    metrics = metrics or QualityMetrics()
    report = report if report is not None else {}
    style_imgs = {s.name: prepare_styles(s, size)[0] for s in styles}
    targets = {n: metrics.style_targets(x) for n, x in style_imgs.items()}
    outputs: dict[tuple[str, str, str], torch.Tensor] = {}
    for name, run in runners.items():
        rows = report.setdefault("methods", {}).setdefault(name, {})
        for c in contents:
            content = resize_long_side(load_image(c).image, size)
            keep = keep_outputs if isinstance(keep_outputs, bool) else c.name in keep_outputs
            for s, style in style_imgs.items():
                key = f"{c.name}|{s}"
                if key in rows and not keep:
                    continue
                t = time.perf_counter()
                out = run(content, style).detach()
                seconds = time.perf_counter() - t
                if key not in rows:
                    rows[key] = {**metrics.evaluate(out, content, targets[s]), "seconds": seconds}
                if keep:
                    outputs[(c.name, s, name)] = out
                if on_pair is not None:
                    on_pair(report)
        report.setdefault("summary", {})[name] = summarise(rows)
    return report, outputs, style_imgs


def comparison_sheet(outputs: dict, contents: Sequence[Path], style_imgs: dict, methods: Sequence[str],
                     size: int, tile: int = 192) -> Image.Image:
    """One row per (content, style) pair: content, style, then each method; labels above each row."""
    label = 16
    rows = []
    for c in contents:
        content = resize_long_side(load_image(c).image, size)
        for s in style_imgs:
            cells = [content, style_imgs[s], *[outputs.get((c.name, s, m)) for m in methods]]
            thumbs = []
            for img in cells:
                im = Image.fromarray(to_uint8(img)) if img is not None else Image.new("RGB", (tile, tile), "gray")
                im.thumbnail((tile, tile))
                thumbs.append(im)
            rows.append((f"{c.stem} / {Path(s).stem}", thumbs))
    height = sum(label + max(t.height for t in thumbs) for _, thumbs in rows) + label
    sheet = Image.new("RGB", ((2 + len(methods)) * tile, height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(["content", "style", *methods]):
        draw.text((i * tile + 4, 2), name, fill="black")
    y = label
    for caption, thumbs in rows:
        draw.text((4, y + 2), caption, fill="black")
        y += label
        for i, im in enumerate(thumbs):
            sheet.paste(im, (i * tile, y))
        y += max(t.height for t in thumbs)
    return sheet


def write_report(report: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1))


def run_eval(contents: Sequence[Path], styles: Sequence[Path], methods: Sequence[str], out_dir: Path,
             size: int = 384, method_options: dict[str, dict] | None = None) -> dict:
    method_options = method_options or {}
    runners = {m: method_runner(build(m, progress=False, **method_options.get(m, {}))) for m in methods}
    report_path = out_dir / "report.json"
    report = {"size": size, "contents": [c.name for c in contents], "styles": [s.name for s in styles]}
    report, outputs, style_imgs = evaluate(runners, contents, styles, size, report,
                                           on_pair=lambda r: write_report(r, report_path))
    write_report(report, report_path)
    sheet = comparison_sheet(outputs, contents, style_imgs, list(methods), size)
    save_image(torch.from_numpy(np.array(sheet)).permute(2, 0, 1).float() / 255, out_dir / "sheet.png")
    return report
