"""The resumable training loop shared by every recipe.

A checkpoint (model, optimizer, scheduler, data RNG, step, loss history) is written atomically every
``checkpoint_every`` steps; starting again with the same checkpoint path carries on from the last step.
Checkpoints hold only tensors and plain containers and are read back with ``weights_only=True``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..atomic import atomic_path


@dataclass
class TrainState:
    step: int = 0
    losses: list[float] = field(default_factory=list)


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[int], torch.Tensor],
          steps: int, checkpoint: str | Path | None = None, checkpoint_every: int = 100,
          scheduler=None, rng_state: tuple[Callable, Callable] | None = None,
          on_step: Callable[[int, float], None] | None = None, progress: bool = True) -> TrainState:
    """Run ``loss_fn(step)`` + backward + step until ``steps``, resuming from ``checkpoint`` if it exists.

    ``rng_state`` is a (get, set) pair for the data sampler, so a resumed run sees the same batches.
    ``on_step`` is called with (step, loss) after each step (hosts use it for progress and previews,
    and may raise to interrupt; the last checkpoint stays valid).
    """
    state = TrainState()
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt and ckpt.exists():
        saved = torch.load(ckpt, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and "scheduler" in saved:
            scheduler.load_state_dict(saved["scheduler"])
        if rng_state is not None and "rng" in saved:
            rng_state[1](saved["rng"])
        state = TrainState(step=int(saved["step"]), losses=list(saved["losses"]))

    def save() -> None:
        if ckpt is None:
            return
        payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "step": state.step, "losses": state.losses}
        if scheduler is not None:
            payload["scheduler"] = scheduler.state_dict()
        if rng_state is not None:
            payload["rng"] = rng_state[0]()
        _atomic_torch_save(payload, ckpt)

    model.train()
    bar = tqdm(total=steps, initial=state.step, disable=not progress, desc="train", dynamic_ncols=True)
    while state.step < steps:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(state.step)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        state.step += 1
        state.losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{state.losses[-1]:.4f}")
        if on_step is not None:
            on_step(state.step, state.losses[-1])
        if state.step % checkpoint_every == 0 or state.step == steps:
            save()
    bar.close()
    model.eval()
    return state
