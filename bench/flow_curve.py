"""A FlowNet training curve: checkpoints saved along one run, each graded the way bench/flow_quality.py grades a
backend (EPE on the MPI-Sintel pairs and on held-out synthetic pairs, mean flow on a frame given twice), beside the
run's training loss over the steps before it.

Copy the run's checkpoint now and then while it trains (``cp RUN.ckpt curve/step_N.ckpt``), then:

    python bench/flow_curve.py curve/*.ckpt --recipe flownetc [--synthetic 16 --synthetic-size 128]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow_quality import RESULTS, identical_frames, measure, sintel_pairs, synthetic_pairs  # noqa: E402

from brushstream.core.flow import get_flow  # noqa: E402
from brushstream.core.hub.weights import save_weights  # noqa: E402
from brushstream.core.io.atomic import atomic_path  # noqa: E402
from brushstream.core.train.catalogue import get_recipe  # noqa: E402


def network_file(checkpoint: Path, recipe_name: str, folder: Path) -> tuple[Path, int, list[float]]:
    """The checkpoint's network as a weights file, its step and the training losses recorded up to it."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(saved["recipe"]).items()}
    recipe = get_recipe(recipe_name)(**values)
    model = recipe.build_model()
    model.load_state_dict(saved["model"])
    model.eval()
    tensors, meta = recipe.export(model)
    path = folder / f"{checkpoint.stem}.safetensors"
    save_weights(path, tensors, meta)
    losses = [float(row["total"]) for row in saved.get("history", []) if "total" in row]
    return path, int(saved["step"]), losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--recipe", default="flownetc", choices=("flownetc", "flownets"))
    ap.add_argument("--passes", default="final,clean")
    ap.add_argument("--synthetic", type=int, default=16)
    ap.add_argument("--synthetic-size", type=int, default=128)
    ap.add_argument("--window", type=int, default=200, help="training loss: mean over this many steps before each")
    ap.add_argument("-o", "--output", default=str(RESULTS / "flow_curve.json"))
    args = ap.parse_args()

    sintel = sintel_pairs(tuple(args.passes.split(",")))
    synthetic = synthetic_pairs(args.synthetic, args.synthetic_size, seed=12345)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint in args.checkpoints:
            path, step, losses = network_file(checkpoint, args.recipe, Path(tmp))
            backend = get_flow("flownet", weights=str(path))
            s = measure(backend, sintel)["pairs"]
            y = measure(backend, synthetic)["pairs"]
            rows.append({"checkpoint": checkpoint.name, "step": step,
                         "train_loss": statistics.mean(losses[-args.window:]) if losses else None,
                         "sintel": statistics.mean(v["all"] for v in s.values()),
                         "sintel_pairs": {k: v["all"] for k, v in s.items()},
                         "synthetic": statistics.mean(v["all"] for v in y.values()),
                         "identical": identical_frames(backend, sintel)})
    rows.sort(key=lambda r: r["step"])
    print(f"{'step':>6}{'train loss':>12}{'sintel EPE':>12}{'synthetic EPE':>15}{'same frame':>12}")
    for r in rows:
        loss = f"{r['train_loss']:.3f}" if r["train_loss"] is not None else "-"
        print(f"{r['step']:>6}{loss:>12}{r['sintel']:>12.2f}{r['synthetic']:>15.2f}{r['identical']:>12.2f}")
    with atomic_path(Path(args.output)) as out:
        Path(out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
