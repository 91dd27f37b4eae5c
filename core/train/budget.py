"""Training stages and the wall-clock budget (``brushstream train ... --minutes N``).

A recipe splits its run into stages (say, small crops first, then the full crop size), each a share of the
run. With ``--steps`` the shares are shares of the steps, so a run is the same on every machine and resumes
bit for bit. With ``--minutes`` they are shares of the time: the plan measures each step as it goes, moves to
the next stage when its share of the time is used, and stops when one more step would not finish before the
deadline. The deadline keeps back a reserve for what comes after the last step (the file, the loss curve and
the preview sheet), so the whole command fits the budget. The learning-rate schedule follows the same
progress (the elapsed share of time instead of steps), so a budgeted run ends its schedule when time runs out.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import BrushstreamError

# What follows the last step (export, manifest, loss curve, preview sheet) takes a few seconds; the reserve
# keeps that inside the budget. A fraction scales with the run; the floor covers the fixed costs.
FINISH_RESERVE_FRACTION = 0.03
FINISH_RESERVE_FLOOR_S = 4.0
# Step times are smoothed so one slow step (a checkpoint, a preview, another process) does not swing the plan.
STEP_TIME_SMOOTHING = 0.2


@dataclass(frozen=True)
class Stage:
    """A part of a run: its share of the run (steps or time) and the training crop size it uses."""
    name: str
    share: float
    size: int


def check_stages(stages: list[Stage]) -> list[Stage]:
    if not stages or any(not (s.share > 0 and math.isfinite(s.share)) or s.size < 16 for s in stages):
        raise BrushstreamError(f"a recipe's stages need positive shares and crops of at least 16 px, got {stages}")
    total = sum(s.share for s in stages)
    return [Stage(s.name, s.share / total, s.size) for s in stages]


def stage_at(stages: list[Stage], progress: float) -> int:
    """Index of the stage that covers ``progress`` (0..1) of the run."""
    edge = 0.0
    for i, stage in enumerate(stages):
        edge += stage.share
        if progress < edge - 1e-12:
            return i
    return len(stages) - 1


def parse_minutes(minutes: float | None) -> float | None:
    if minutes is None:
        return None
    if not (math.isfinite(minutes) and minutes > 0):
        raise BrushstreamError(f"--minutes must be a positive number, got {minutes}")
    return float(minutes)


class TimeBudget:
    """The plan of a ``--minutes`` run: which stage now, the learning-rate progress, whether to stop, the ETA.

    ``spent`` is the training time of earlier parts of a resumed run (from its checkpoint). ``clock`` is
    injectable so tests can run a budget on a simulated clock.
    """

    def __init__(self, seconds: float, stages: list[Stage], *, spent: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        self.seconds, self.stages, self.clock = seconds, stages, clock
        self.started = clock()            # setup (loss network, style targets) counts against the budget
        self.reserve = max(FINISH_RESERVE_FLOOR_S, FINISH_RESERVE_FRACTION * seconds)
        self.spent_before = spent
        self.train_started: float | None = None
        self.train_seconds = 0.0          # the time the steps may use, fixed when the first step starts
        self.step_time: dict[int, float] = {}   # smoothed seconds per step, per stage

    def begin(self) -> None:
        """Called once setup is done: what is left of the budget, less the reserve, is the steps' time."""
        self.train_started = self.clock()
        left = self.seconds - self.spent_before - (self.train_started - self.started) - self.reserve
        self.train_seconds = max(0.0, left)

    def elapsed(self) -> float:
        """Training seconds so far, earlier parts of a resumed run included."""
        return self.spent_before + (self.clock() - self.train_started if self.train_started is not None else 0.0)

    def progress(self) -> float:
        """The share of the run's training time used (0..1), earlier parts included."""
        total = self.spent_before + self.train_seconds
        return min(1.0, self.elapsed() / total) if total > 0 else 1.0

    def stage(self) -> int:
        return stage_at(self.stages, self.progress())

    def record(self, stage: int, seconds: float) -> None:
        old = self.step_time.get(stage)
        self.step_time[stage] = seconds if old is None else old + STEP_TIME_SMOOTHING * (seconds - old)

    def _estimate(self, stage: int) -> float:
        """Seconds per step in ``stage``: measured, or scaled from a measured stage by crop area."""
        if stage in self.step_time:
            return self.step_time[stage]
        for known, seconds in self.step_time.items():
            return seconds * (self.stages[stage].size / self.stages[known].size) ** 2
        return 0.0

    def time_left(self) -> float:
        return self.spent_before + self.train_seconds - self.elapsed()

    def should_stop(self) -> bool:
        """True when the next step would not end before the deadline."""
        left = self.time_left()
        return left <= 0 or left < self._estimate(self.stage())

    def steps_left(self) -> int:
        """Planned steps still to come (for the progress bar's total and the ETA)."""
        now, steps = self.progress(), 0.0
        edge, total = 0.0, self.spent_before + self.train_seconds
        for i, stage in enumerate(self.stages):
            start, edge = edge, edge + stage.share
            share = max(0.0, edge - max(start, now))
            per_step = self._estimate(i)
            if share > 0 and per_step > 0:
                steps += share * total / per_step
        return int(steps)
