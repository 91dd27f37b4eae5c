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
import os
import shlex
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import BrushstreamError
from .budget import Stage
from .content_sets import DEFAULT_CONTENT_SET, content_set_folder

SOURCES = ("paper", "project")


def hp(default: Any, source: str = "project", *, paper: str = "", help: str = "", cli: bool = True,
       minimum: float | None = None, maximum: float | None = None, choices: tuple = ()) -> Any:
    """A hyper-parameter field: default, where the value comes from, and the paper's value if it differs."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    meta = {"source": source, "paper": paper, "help": help, "cli": cli, "minimum": minimum, "maximum": maximum,
            "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Recipe:
    """Common hyper-parameters; subclasses add theirs and implement the hooks below."""
    name: ClassVar[str]
    summary: ClassVar[str] = ""
    method: ClassVar[str] = ""            # the registry method that loads the result ("" for components)

    content_dir: str = hp("", help="folder of training photos (default: the photos of --content-set)")
    content_set: str = hp(DEFAULT_CONTENT_SET, help="the manifest's set of training photos (the COCO stand-in), "
                          "fetched from the Hub, verified and cached, when --content-dir is not given")
    style: tuple[str, ...] = hp((), help="style image(s); repeat the flag for several")
    size: int = hp(192, paper="256", help="training crop size in px", minimum=16)
    steps: int = hp(2000, paper="40000", help="optimisation steps", minimum=1)
    batch: int = hp(4, "paper", help="global batch size (split over processes under torchrun)", minimum=1)
    lr: float = hp(1e-3, "paper", help="Adam learning rate", minimum=0)
    seed: int = hp(0, help="seed of the data order, the augmentation and the initial weights")
    grad_clip: float = hp(0.0, paper="none", help="largest gradient norm per step, 0 for none (a spike on a "
                          "small batch otherwise moves Adam several learning rates at once)", minimum=0)

    def photos(self) -> str:
        """The folder of training photos: --content-dir, or the content set's (fetched and unpacked on first use)."""
        if self.content_dir:
            return self.content_dir
        return str(content_set_folder(self.content_set))

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

    def lr_factor(self, progress: float) -> float:
        """The learning rate's factor at ``progress`` (0..1) of the run: cosine decay to a tenth (project's choice;
        Johnson keeps it constant). Step runs take progress from steps, ``--minutes`` runs from time."""
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))

    def scheduler(self, optimizer: torch.optim.Optimizer):
        steps = self.steps
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: self.lr_factor(min(s, steps) / steps))

    def stages(self) -> list[Stage]:
        """The parts of a run and their crop sizes (budget.py); one stage at ``size`` unless a recipe says more."""
        return [Stage("train", 1.0, self.size)]

    # -- description -----------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse impossible values before anything is loaded (one line naming the flag)."""
        for f in dataclasses.fields(self):
            lo = f.metadata.get("minimum")
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if lo is not None and isinstance(value, (int, float)) and not (math.isfinite(value) and value >= lo):
                raise BrushstreamError(f"{flag} must be at least {lo:g}, got {value}")
            hi = f.metadata.get("maximum")
            if hi is not None and isinstance(value, (int, float)) and value > hi:
                raise BrushstreamError(f"{flag} must be at most {hi:g}, got {value}")
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

    def relative_values(self) -> dict[str, Any]:
        """The hyper-parameters with every absolute path written relative to the folder that holds them all (the
        data folder), so a recorded recipe names no machine's paths and reruns from inside any copy of the data."""
        def is_path(v) -> bool:   # absolute, or relative to where the run started (``../data/content``)
            return isinstance(v, str) and (os.path.isabs(v) or (os.sep in v and os.path.exists(v)))

        values = json.loads(self.to_json())
        paths = [os.path.abspath(p) for v in values.values() for p in (v if isinstance(v, list) else [v]) if is_path(p)]
        if not paths:
            return values
        root = os.path.commonpath([os.path.dirname(p) for p in paths])

        def rel(v):
            if isinstance(v, list):
                return [rel(x) for x in v]
            return os.path.relpath(os.path.abspath(v), root) if is_path(v) else v
        return {k: rel(v) for k, v in values.items()}

    def command(self, minutes: float | None = None) -> str:
        """The ``brushstream train`` command line that reruns this recipe (paths as in relative_values)."""
        values = self.relative_values()
        parts = ["brushstream", "train", self.name]
        for f in dataclasses.fields(self):
            if not f.metadata.get("cli", True):
                continue
            flag, value = "--" + f.name.replace("_", "-"), values[f.name]
            if f.name == "content_set" and self.content_dir:   # the folder given replaces the set
                continue
            if f.name == "style":
                parts += [x for s in value for x in (flag, s)]
            elif isinstance(value, bool):
                parts.append(flag if value else "--no-" + flag[2:])
            elif isinstance(value, list):
                parts += [flag, ",".join(map(str, value))]
            elif value != "":
                parts += [flag, str(value)]
        if minutes is not None:
            parts += ["--minutes", f"{minutes:g}"]
        return " ".join(shlex.quote(p) for p in parts)

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
