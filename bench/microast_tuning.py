"""The quick yardstick MicroAST fine-tunes were steered by, on training styles only (the held-out eight are never
looked at here): mean Gram ratio and content distance of each network over the first N photos of content_eval at
384 px with six of its training styles. A network is a manifest name, a .safetensors file or a training checkpoint
(.ckpt); ``--extrapolate`` also runs each style's modulation signals pushed past the style (s > 1 on the line from
the content's own signals to the style's).

    python bench/microast_tuning.py microast_official runs/microast.ckpt --photos 3 [--extrapolate 1.25 1.5]

``--style-dir DIR --styles a,b,c`` judges on other styles instead: a validation split of the training pool that a run
held out (with its --held-out), so a choice between runs is made on paintings none of them learnt and none of the
eight held-out ones.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import STYLES, eval_photos, photo  # noqa: E402

from brushstream.core.methods.microast import load_microast  # noqa: E402
from brushstream.core.metrics import QualityMetrics  # noqa: E402
from brushstream.core.nets.microast import MicroAST, mix_signals  # noqa: E402

TUNING_STYLES = ("starry_night", "the_great_wave", "composition_vii", "udnie", "mosaic", "scene_de_rue")


def load_network(source: str) -> MicroAST:
    if source.endswith(".ckpt"):
        net = MicroAST()
        net.load_state_dict(torch.load(source, weights_only=True)["model"])
        return net.eval().requires_grad_(False)
    return load_microast(source)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("networks", nargs="+")
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--extrapolate", type=float, nargs="*", default=[])
    ap.add_argument("--style-dir", type=Path, default=STYLES, help="folder of the styles (default: the shared styles)")
    ap.add_argument("--styles", default=",".join(TUNING_STYLES), help="comma-separated file names without extension")
    args = ap.parse_args()
    metrics = QualityMetrics()
    photos = [photo(p, 384) for p in eval_photos()[: args.photos]]
    photos = [c[..., : c.shape[-2] // 4 * 4, : c.shape[-1] // 4 * 4] for c in photos]
    names = [s for s in args.styles.split(",") if s]
    styles = {s: photo(next(args.style_dir.glob(f"{s}.*")), 384) for s in names}
    targets = {s: metrics.style_targets(x) for s, x in styles.items()}
    with torch.no_grad():
        for source in args.networks:
            net = load_network(source)
            for factor in [1.0, *args.extrapolate]:
                rows = []
                for name, style in styles.items():
                    signals = net.signals(style)
                    for content in photos:
                        mixed = signals if factor == 1.0 else mix_signals([signals, net.signals(content)],
                                                                          (factor, 1.0 - factor))
                        rows.append(metrics.evaluate(net(content, mixed).clamp(0, 1), content, targets[name]))
                print(f"{source} (signals x{factor:g}): Gram ratio {statistics.mean(r['gram_ratio'] for r in rows):.3f}"
                      f"  content {statistics.mean(r['content'] for r in rows):.3f}  ({len(rows)} pairs)", flush=True)


if __name__ == "__main__":
    main()
