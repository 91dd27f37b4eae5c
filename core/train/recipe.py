"""The recipe protocol: what a trainable network needs, with every hyper-parameter kept as data.

A recipe is a dataclass whose fields are its hyper-parameters, each declared with :func:`hp`, which says
whether the value is the paper's or the project's choice (and the paper's value where we deviate), as
pystiche does. The loop (loop.py) knows nothing about any method: it asks the recipe for a fresh model,
its optimiser and schedule, the loss of a batch, preview images and the tensors and metadata to export.
The CLI flags of ``brushstream train NAME`` are generated from the fields (cli=True).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import BrushstreamError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
DEFAULT_CONTENT = str(SHARED_DATA / "content")
SOURCES = ("paper", "project")


def hp(default: Any, source: str = "project", *, paper: str = "", help: str = "", cli: bool = True,
       minimum: float | None = None, choices: tuple = ()) -> Any:
    """A hyper-parameter field: default, where the value comes from, and the paper's value if it differs."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    meta = {"source": source, "paper": paper, "help": help, "cli": cli, "minimum": minimum, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Recipe:
    """Common hyper-parameters; subclasses add theirs and implement the hooks below."""
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    method: ClassVar[str] = ""            # the registry method that loads the result ("" for components)

    content_dir: str = hp(DEFAULT_CONTENT, help="folder of training photos (the COCO stand-in by default)")
    style: tuple[str, ...] = hp((), help="style image(s); repeat the flag for several")
    size: int = hp(192, paper="256", help="training crop size in px", minimum=16)
    steps: int = hp(2000, paper="40000", help="optimisation steps", minimum=1)
    batch: int = hp(4, "paper", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-3, "paper", help="Adam learning rate", minimum=0)
    seed: int = hp(0, help="seed of the data order, the augmentation and the initial weights")

    # -- hooks every recipe implements -----------------------------------------------------------
    def build_model(self) -> nn.Module:
        """A fresh, trainable network (seeded)."""
        raise NotImplementedError

    def setup(self, device: torch.device) -> None:
        """Build the loss network and style targets (once per run, on ``device``)."""

    def losses(self, model: nn.Module, content: torch.Tensor, step: int, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """The weighted loss terms of one batch, plus their sum under "total". ``model`` may be DDP-wrapped:
        call it, never its attributes. ``rng`` is seeded by (seed, step), the same on every process."""
        raise NotImplementedError

    @torch.no_grad()
    def preview(self, model: nn.Module, content: torch.Tensor) -> torch.Tensor:
        """Stylized preview images (B, 3, H, W) in [0, 1] of fixed inputs."""
        raise NotImplementedError

    def export(self, model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Tensors and metadata (architecture, styles) of the trained network's file."""
        raise NotImplementedError

    # -- defaults recipes may override ---------------------------------------------------------------
    def prepare_model(self, model: nn.Module) -> None:
        """Set data-dependent parts of a new model after ``setup`` (not called on resume: the checkpoint has them)."""

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.lr)

    def scheduler(self, optimizer: torch.optim.Optimizer):
        """Cosine decay to a tenth of the rate over the run (project's choice; Johnson keeps it constant)."""
        steps = self.steps
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))

    # -- description -----------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse impossible values before anything is loaded (one line naming the flag)."""
        for f in dataclasses.fields(self):
            lo = f.metadata.get("minimum")
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if lo is not None and isinstance(value, (int, float)) and not (math.isfinite(value) and value >= lo):
                raise BrushstreamError(f"{flag} must be at least {lo:g}, got {value}")
            choices = f.metadata.get("choices") or ()
            if choices and value not in choices:
                raise BrushstreamError(f"{flag} must be one of {', '.join(map(str, choices))}, got {value!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    def describe(self) -> list[dict[str, Any]]:
        """Each hyper-parameter with its value and where the value comes from."""
        rows = []
        for f in dataclasses.fields(self):
            rows.append({"name": f.name, "value": getattr(self, f.name), "source": f.metadata.get("source", "project"),
                         "paper": f.metadata.get("paper", ""), "help": f.metadata.get("help", "")})
        return rows

    def same_run_as(self, other_json: str) -> list[str]:
        """Hyper-parameters that differ from a checkpoint's recipe (``steps`` may grow on resume). A hyper-parameter
        the checkpoint predates counts as the same when this recipe keeps its default (the run it made is unchanged)."""
        other = json.loads(other_json)
        mine = json.loads(self.to_json())
        for f in dataclasses.fields(self):
            if f.name not in other and f.default is not dataclasses.MISSING:
                other[f.name] = json.loads(json.dumps(f.default))
        return sorted(k for k in set(mine) | set(other) if k != "steps" and mine.get(k) != other.get(k))


_RECIPES: dict[str, type[Recipe]] = {}


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    _RECIPES[cls.name] = cls
    return cls


def registered_recipes() -> dict[str, type[Recipe]]:
    """The recipes registered so far; core/train/catalogue.py imports every recipe module first."""
    return dict(sorted(_RECIPES.items()))
