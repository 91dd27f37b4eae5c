"""The one training loop: device-aware, exactly resumable, interruptible, and the same under torchrun DDP.

A checkpoint holds the model, optimiser, scheduler (and fp16 grad scaler), the global RNG states, the step,
the data position (step x global batch: see data.py) and the loss history, and is written atomically every
``checkpoint_every`` steps and when SIGINT/SIGTERM or the host's callback stops the run. Per-step randomness
comes from a generator seeded by (seed, step), so a resumed CPU run continues bit for bit, and ``kill -9``
loses only the steps since the last checkpoint. Under ``torchrun`` each process reads its slice of the global
batch, DistributedDataParallel averages the gradients, and only rank 0 writes files or reports progress.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .. import devices
from ..errors import BrushstreamError
from ..hub.weights import load_state_dict, manifest_entry_for_file, resolve, save_weights, sha256_file
from ..io.atomic import atomic_path
from ..io.image import fixed_crops
from .budget import TimeBudget, check_stages, parse_minutes, stage_at
from .data import PhotoCrops, photo_loader
from .precision import resolve_precision
from .recipe import Recipe

CHECKPOINT_VERSION = 1


class TrainingStopped(Exception):
    """The run stopped early (signal or host); the checkpoint named in the message is valid."""

    def __init__(self, message: str, step: int, signum: int | None = None):
        super().__init__(message)
        self.step, self.signum = step, signum


@dataclass
class Progress:
    """What a host sees after each step (rank 0 only)."""
    step: int
    steps: int
    losses: dict[str, float]
    seconds: float
    preview: torch.Tensor | None = None     # (B, 3, H, W) on preview steps
    stage: str = ""                         # the stage's name (budget.py)
    seconds_left: float | None = None       # a --minutes run: training time left


@dataclass
class TrainResult:
    output: Path
    steps: int
    seconds: float                          # wall time of this process's steps (resumed runs: this part)
    final_losses: dict[str, float]
    metadata: dict[str, str]
    history: list[dict[str, float]] = field(repr=False, default_factory=list)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _distributed(device_type: str) -> _Dist:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, ranks: _Dist | None = None) -> torch.device:
    return devices.resolve_device(name, ranks.local_rank if ranks else 0)


def _autocast(device: torch.device, precision: str):
    """``precision`` is resolved (precision.py): fp32, bf16 or fp16."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


class _StopSignals:
    """SIGINT/SIGTERM ask the loop to stop after the current step (main thread only; restored on exit)."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.signum is not None:   # a second Ctrl-C: stop now, the last checkpoint stays valid
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


def _one_network_per_style(recipe: Recipe) -> bool:
    """Johnson and ReCoNet files paint the style they were trained on: their entry names it (``styles``)."""
    from ..methods import available

    cls = available().get(recipe.method or recipe.name)
    return bool(cls and cls.capabilities.trained_styles and not cls.capabilities.style_blend and recipe.style)


def default_checkpoint(out: str | os.PathLike) -> Path:
    """OUT's stem + .ckpt, beside OUT.loss.png, OUT.preview.png and OUT.previews/ (one naming for all of them); a
    run started before that naming resumes from its OUT.safetensors.ckpt."""
    out = Path(out)
    current, earlier = out.with_name(out.stem + ".ckpt"), out.with_name(out.name + ".ckpt")
    return earlier if earlier.is_file() and not current.exists() else current


def _rng_states() -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _save_grid(images: torch.Tensor, path: Path) -> None:
    from ..io.image import save_image

    grid = torch.cat(list(images.clamp(0, 1).float().cpu()), dim=-1).unsqueeze(0)
    save_image(grid, path)


def save_preview_sheet(inputs: torch.Tensor, outputs: torch.Tensor, path: Path) -> None:
    """The photos (top row) over what the trained network makes of them (bottom row), written atomically. A preview
    that already shows its inputs (a flow network's frames over their flow) is the sheet by itself."""
    from ..io.image import save_image

    shown = (inputs, outputs) if inputs.shape[-2:] == outputs.shape[-2:] else (outputs,)
    rows = [torch.cat(list(x.clamp(0, 1).float().cpu()), dim=-1) for x in shown]
    save_image(torch.cat(rows, dim=-2).unsqueeze(0), path)


def final_losses(history: list[dict[str, float]]) -> dict[str, float]:
    """Each term's mean over the last tenth of the run (between 1 and 50 steps), so a short run reports its end."""
    tail = history[-max(1, min(50, len(history) // 10)):]
    return {k: sum(h[k] for h in tail) / len(tail) for k in history[-1]}


def plot_losses(history: list[dict[str, float]], path: Path, title: str) -> None:
    """The loss curve (each term and the total, log scale, smoothed) as a PNG, written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name in history[0]:
        values = torch.tensor([h[name] for h in history], dtype=torch.float64)
        k = max(1, len(values) // 50)
        smooth = torch.nn.functional.avg_pool1d(values.view(1, 1, -1), k, 1, padding=0).flatten() if k > 1 else values
        ax.plot(range(k, len(values) + 1) if k > 1 else range(1, len(values) + 1), smooth.numpy(),
                label=name, linewidth=2 if name == "total" else 1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# Steps of linear learning-rate warm-up for --init-from runs: Adam's first steps move every weight by about the
# rate whatever its gradient, which knocked a trained Johnson net from loss 2.7 to 7.9 in one step at 5e-4.
INIT_FROM_WARMUP = 50


def _load_initial_weights(model: torch.nn.Module, source: str | os.PathLike) -> str:
    """Copy a trained file's weights into a new model of the same architecture and configuration (one-line errors
    otherwise). Returns "name-or-path sha256" for the new file's metadata."""
    tensors, meta = load_state_dict(source)
    config = getattr(model, "config", lambda: None)()
    if config is not None and meta.get("config") and json.loads(meta["config"]) != config:
        raise BrushstreamError(f"{source}: was trained with {meta['config']}, this recipe builds {json.dumps(config)}")
    own = model.state_dict()
    if set(own) - set(tensors) or any(tensors[k].shape != v.shape for k, v in own.items() if k in tensors):
        raise BrushstreamError(f"{source}: its tensors do not fit this recipe's network")
    model.load_state_dict({k: tensors[k].to(v.dtype) for k, v in own.items()})
    return f"{source} sha256:{sha256_file(resolve(source))}"


def fit(recipe: Recipe, out: str | os.PathLike, *, checkpoint: str | os.PathLike | None = None,
        resume: bool = False, init_from: str | os.PathLike | None = None, device: str = "cpu",
        precision: str = "auto", minutes: float | None = None, max_steps: int | None = None, checkpoint_every: int = 100,
        preview_every: int = 0, preview_count: int = 2, workers: int = 0,
        callback: Callable[[Progress], bool | None] | None = None, progress: bool = True,
        loss_curve: bool = True, clock: Callable[[], float] = time.monotonic) -> TrainResult:
    """Train ``recipe`` and write ``out`` (safetensors) with a manifest entry beside it (``out``'s stem + .manifest.json),
    its loss curve (``out``'s stem + .loss.png) and a preview sheet (stem + .preview.png).

    ``checkpoint`` defaults to ``out``.ckpt. An existing checkpoint is refused unless ``resume`` (so a
    finished run is never overwritten by accident); ``resume`` with a changed recipe (other than ``steps``) is
    refused too. ``callback(progress)`` returning False stops the run like a signal does. ``init_from`` starts a
    new run from a trained file's weights (fine-tuning with a changed recipe, which ``resume`` refuses).
    ``minutes`` fits the whole run, setup and finishing included, into that wall-clock budget (budget.py);
    ``recipe.steps`` is then ignored and ``max_steps`` (if given) caps the steps. ``precision`` "auto" is bf16 where
    the hardware has it (precision.py).
    """
    # Ctrl-C and SIGTERM stop the run cleanly from its first line on: a signal while the loss network loads
    # stops it after the first step (with a checkpoint); it is never lost, nor a traceback.
    with _StopSignals() as signals:
        recipe.check()
        minutes = parse_minutes(minutes)
        stages = check_stages(recipe.stages())
        if init_from is not None and resume:
            raise BrushstreamError("--init-from starts a new run; --resume continues one: use one of them")
        out = Path(out)
        ckpt = Path(checkpoint) if checkpoint else default_checkpoint(out)
        ranks = _distributed("cuda" if device in ("cuda", "auto") and torch.cuda.is_available() else "cpu")
        dev = resolve_device(device, ranks)
        precision = resolve_precision(precision, dev)
        saved = None
        if resume and not ckpt.exists():
            raise BrushstreamError(f"{ckpt}: no checkpoint to resume (drop --resume to start a new run)")
        if ckpt.exists():
            if not resume:
                raise BrushstreamError(f"{ckpt}: a checkpoint of an earlier run exists; add --resume to continue it "
                                       f"or delete it to start over")
            try:
                saved = torch.load(ckpt, weights_only=True, map_location="cpu")
            except Exception as exc:  # noqa: BLE001  (any unreadable checkpoint is one clear line)
                raise BrushstreamError(f"{ckpt}: unreadable checkpoint ({type(exc).__name__})") from None
            changed = recipe.same_run_as(saved.get("recipe", "{}"))
            if saved.get("version") != CHECKPOINT_VERSION or changed:
                raise BrushstreamError(f"{ckpt}: the checkpoint was made with a different recipe "
                                       f"({', '.join(changed) or 'version'}); resume with the same settings")
        budget = None
        if minutes is not None:   # the clock starts before setup: loading the loss network is part of the budget
            budget = TimeBudget(minutes * 60, stages, clock=clock,
                                spent=float(saved.get("budget_spent", 0.0)) if saved is not None else 0.0)

        if init_from is not None:
            resolve(init_from)       # a missing or broken file is one line before anything else is fetched or built
        photos = recipe.photos()   # a missing content set is one line before anything is built
        model = recipe.build_model().to(dev)
        recipe.setup(dev)
        if saved is None:   # a resumed run loads the prepared state back; preparing is start-up cost (a pruned start: 1 min)
            recipe.prepare_model(model)
        started_from = _load_initial_weights(model, init_from) if init_from is not None else None
        warmup = INIT_FROM_WARMUP if started_from else int(saved.get("warmup", 0)) if saved is not None else 0
        optimizer = recipe.optimizer(model)
        if budget is not None:   # the schedule follows the share of time used, not of steps
            budget.begin()
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _s: recipe.lr_factor(budget.progress()))
        else:
            scheduler = recipe.scheduler(optimizer)
        scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")
        step, history = 0, []
        if saved is not None:
            model.load_state_dict(saved["model"])
            started_from = saved.get("init_from") or None   # a resumed fine-tune still says what it started from
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            scaler.load_state_dict(saved["scaler"])
            _set_rng_states(saved["rng"])
            step, history = int(saved["step"]), list(saved["history"])
            if int(saved["position"]) != step * recipe.batch:
                raise BrushstreamError(f"{ckpt}: data position does not match the step; the file is damaged")
        net = model
        if ranks.world > 1:
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

        def stage_now() -> int:
            return budget.stage() if budget is not None else stage_at(stages, step / recipe.steps)

        def more_steps() -> bool:
            if budget is not None:
                return (max_steps is None or step < max_steps) and not budget.should_stop()
            return step < recipe.steps

        def batches_for(stage: int):
            dataset = PhotoCrops(photos, stages[stage].size, seed=recipe.seed)
            return photo_loader(dataset, recipe.batch, start_step=step, rank=ranks.rank, world=ranks.world, workers=workers)

        stage = stage_now()
        batches = batches_for(stage)
        preview_inputs = fixed_crops(photos, recipe.size, preview_count).to(dev) if ranks.main else None
        previews_dir = out.with_name(out.stem + ".previews")

        def save_checkpoint() -> None:
            if not ranks.main:
                return
            payload = {"version": CHECKPOINT_VERSION, "recipe": recipe.to_json(), "model": model.state_dict(),
                       "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                       "scaler": scaler.state_dict(), "rng": _rng_states(), "step": step,
                       "position": step * recipe.batch, "history": history, "warmup": warmup,
                       "init_from": started_from or "", **({"budget_spent": budget.elapsed()} if budget else {})}
            with atomic_path(ckpt) as tmp:
                torch.save(payload, tmp)

        def planned_steps() -> int:
            return step + budget.steps_left() if budget is not None else recipe.steps

        bar = tqdm(total=planned_steps(), initial=step, desc=f"train {recipe.name}", dynamic_ncols=True,
                   disable=not (progress and ranks.main))
        started = time.perf_counter()
        model.train()
        while more_steps():
            began = clock()
            if stage_now() != stage:   # a new stage: its crop size from the current data position on
                stage = stage_now()
                batches = batches_for(stage)
            content = next(batches).to(dev, non_blocking=True)
            rng = torch.Generator().manual_seed(recipe.seed * 1_000_003 + step)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(dev, precision):
                terms = recipe.losses(net, content, step, rng)
            scaler.scale(terms["total"]).backward()
            if warmup and step < warmup:   # a fresh Adam on trained weights: ramp the rate up, no first-step jolt
                for group, rate in zip(optimizer.param_groups, scheduler.get_last_lr()):
                    group["lr"] = rate * (step + 1) / warmup
            if recipe.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), recipe.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            values = torch.stack([terms[k].detach().float() for k in terms])
            if ranks.world > 1:
                dist.all_reduce(values)
                values /= ranks.world
            history.append({k: float(v) for k, v in zip(terms, values)})
            stop = signals.signum is not None
            finishing = not more_steps()
            if ranks.main:
                preview = None
                if preview_every and (step % preview_every == 0 or finishing):
                    model.eval()
                    preview = recipe.preview(model, preview_inputs)
                    model.train()
                    _save_grid(preview, previews_dir / f"step_{step:06d}.png")
                left = budget.time_left() if budget is not None else None
                if callback is not None and callback(Progress(step, planned_steps(), history[-1],
                                                              time.perf_counter() - started, preview,
                                                              stages[stage].name, left)) is False:
                    stop = True
            if ranks.world > 1:   # every process stops at the same step
                flag = torch.tensor([float(stop)])
                dist.all_reduce(flag)
                stop = bool(flag.item())
            if step % checkpoint_every == 0 or finishing or stop:
                save_checkpoint()
            if budget is not None:   # the whole iteration, checkpoints and previews included, spends the budget
                budget.record(stage, clock() - began)
            if ranks.main:
                bar.total = planned_steps()
                bar.set_description(f"train {recipe.name} [{stages[stage].name}]" if len(stages) > 1
                                    else f"train {recipe.name}")
                bar.update(1)
                bar.set_postfix(loss=f"{history[-1]['total']:.4g}",
                                **({"left": f"{max(0.0, budget.time_left()):.0f}s"} if budget is not None else {}))
            if stop and more_steps():
                bar.close()
                raise TrainingStopped(f"stopped at step {step} of {planned_steps()}; checkpoint saved to {ckpt} "
                                      f"(continue with --resume)", step, signals.signum)
        bar.close()
        if not history:
            raise BrushstreamError(f"--minutes {minutes:g}: no time left for a single step after setting up; "
                                   f"give a larger budget" if budget is not None else "no steps to train")
        seconds = time.perf_counter() - started
        model.eval()
        tensors, metadata = recipe.export(model)
        final = final_losses(history)
        metadata = {**metadata, "recipe_name": recipe.name, "recipe": recipe.to_json(), "steps": str(step),
                    "final_losses": ",".join(f"{k}={v:.6g}" for k, v in final.items()),
                    "trained_on": f"{dev.type} x{ranks.world}", "precision": precision,
                    **({"budget_minutes": f"{minutes:g}"} if minutes is not None else {}),
                    **({"init_from": started_from} if started_from else {})}
        if ranks.main:
            save_weights(out, tensors, metadata)
            entry = manifest_entry_for_file(
                out, name=out.stem, method=recipe.method or recipe.name, licence="same as the style images' licences",
                attribution=f"trained with Brushstream's {recipe.name} recipe", convention="RGB 0-1 in, RGB 0-1 out",
                description=f"{recipe.summary} ({', '.join(Path(s).stem for s in recipe.style) or 'no style'})",
                recipe={"command": recipe.command(minutes) + (f" --init-from {init_from}" if init_from else ""),
                        **recipe.relative_values()},
                training={"steps": step, "final_losses": final, "device": dev.type, "processes": ranks.world,
                          "precision": precision, **({"minutes": minutes} if minutes is not None else {})},
                role="model", **({"styles": [Path(s).stem for s in recipe.style]} if _one_network_per_style(recipe) else {}))
            with atomic_path(out.with_name(out.stem + ".manifest.json")) as tmp:
                Path(tmp).write_text(json.dumps(entry, indent=2) + "\n")
            if loss_curve and history:
                plot_losses(history, out.with_name(out.stem + ".loss.png"), f"{recipe.name}: {out.stem}")
                with torch.no_grad():
                    save_preview_sheet(preview_inputs, recipe.preview(model, preview_inputs),
                                       out.with_name(out.stem + ".preview.png"))
        if ranks.world > 1:
            dist.barrier()
        return TrainResult(out, step, seconds, final, metadata, history)
