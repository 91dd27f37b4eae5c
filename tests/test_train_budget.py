"""Training that fits the machine: the --minutes budget (on a simulated clock), stages, the bf16 probe, and
recorded commands that name no machine's paths."""
import json
import shlex
import warnings
from pathlib import Path

import pytest
import torch

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import read_metadata
from brushstream.core.train import precision as precision_mod
from brushstream.core.train.budget import Stage, stage_at
from brushstream.core.train.johnson_recipe import JohnsonRecipe
from brushstream.core.train.loop import TrainingStopped, final_losses, fit

from .conftest import SHARED_DATA

STYLE = str(SHARED_DATA / "styles" / "starry_night.jpg")


class SimulatedClock:
    """A clock that moves only when the run 'spends' time: setup and each step cost what the test says."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class CostedJohnson(JohnsonRecipe):
    """A tiny Johnson recipe whose setup and steps advance a simulated clock (a step costs its crop's area),
    and which records the crop size of every batch."""
    clock: SimulatedClock = None
    seconds_per_step_at_48: float = 0.5
    setup_seconds: float = 3.0
    sizes: list = None

    def setup(self, device):
        super().setup(device)
        self.clock.now += self.setup_seconds

    def losses(self, model, content, step, rng):
        self.sizes.append(content.shape[-1])
        self.clock.now += self.seconds_per_step_at_48 * (content.shape[-1] / 48) ** 2
        return super().losses(model, content, step, rng)


def costed(photos, clock, stages=None, step_seconds=2.0, setup_seconds=3.0, **kw):
    settings = dict(content_dir=str(photos), style=(STYLE,), size=48, steps=10, batch=2, width=4, residual_blocks=1,
                    style_size=64, storage="float32")
    recipe = CostedJohnson(**{**settings, **kw})
    recipe.clock, recipe.sizes = clock, []
    recipe.seconds_per_step_at_48, recipe.setup_seconds = step_seconds, setup_seconds
    if stages is not None:
        recipe.stages = lambda: stages
    return recipe


@pytest.mark.parametrize("minutes, step_seconds", [(1.0, 2.0), (5.0, 10.0)])
def test_a_budgeted_run_uses_its_minutes_within_ten_percent_and_ends_with_every_file(photos, tmp_path, minutes,
                                                                                        step_seconds):
    clock = SimulatedClock()
    recipe = costed(photos, clock, step_seconds=step_seconds)
    start = clock.now
    out = tmp_path / "budget.safetensors"
    result = fit(recipe, out, minutes=minutes, clock=clock, progress=False, precision="fp32")
    used = clock.now - start
    assert 0.9 * minutes * 60 <= used <= minutes * 60, used
    # Steps are not fixed in advance: the budget set them (recipe.steps=10 is ignored under --minutes).
    assert result.steps == len(recipe.sizes) > 20
    assert read_metadata(out)["budget_minutes"] == f"{minutes:g}"
    for name in ("budget.loss.png", "budget.preview.png", "budget.manifest.json"):
        assert (tmp_path / name).stat().st_size > 0, name
        assert (tmp_path / name).stat().st_mode == out.stat().st_mode, name   # one mode for all, from the umask


def test_the_budget_caps_steps_only_when_asked_and_refuses_a_budget_too_small_for_one_step(photos, tmp_path):
    clock = SimulatedClock()
    result = fit(costed(photos, clock), tmp_path / "cap.safetensors", minutes=1, max_steps=7, clock=clock,
                 progress=False, precision="fp32")
    assert result.steps == 7
    clock = SimulatedClock()
    recipe = costed(photos, clock, setup_seconds=120.0)   # setup alone eats a one-minute budget
    with pytest.raises(BrushstreamError, match="no time left for a single step"):
        fit(recipe, tmp_path / "none.safetensors", minutes=1, clock=clock, progress=False, precision="fp32")
    assert not (tmp_path / "none.safetensors").exists()


def test_stages_split_steps_or_time_and_use_their_crop_sizes(photos, tmp_path):
    stages = [Stage("small", 0.5, 32), Stage("full", 0.5, 48)]
    clock = SimulatedClock()
    steps_run = costed(photos, clock, stages=stages, steps=10)
    fit(steps_run, tmp_path / "steps.safetensors", progress=False, precision="fp32")
    assert steps_run.sizes == [32] * 5 + [48] * 5          # --steps: shares of the steps

    clock = SimulatedClock()
    timed = costed(photos, clock, stages=stages, step_seconds=3.0)
    fit(timed, tmp_path / "timed.safetensors", minutes=1, clock=clock, progress=False, precision="fp32")
    small, full = timed.sizes.count(32), timed.sizes.count(48)
    assert timed.sizes == [32] * small + [48] * full
    # Shares of the time: a 32 px step costs (32/48)^2 of a 48 px one, so the small stage runs ~2.25x the steps.
    assert 1.8 < small / full < 2.7, (small, full)


def test_a_budgeted_run_stopped_and_resumed_keeps_to_the_same_total_budget(photos, tmp_path):
    clock = SimulatedClock()
    start = clock.now
    out = tmp_path / "resumed.safetensors"
    with pytest.raises(TrainingStopped):
        fit(costed(photos, clock), out, minutes=1, clock=clock, progress=False, precision="fp32",
            checkpoint_every=5, callback=lambda p: p.step != 10)
    first_part = clock.now - start
    clock.now += 3600          # an hour between the two parts does not count
    restart = clock.now
    result = fit(costed(photos, clock), out, minutes=1, resume=True, clock=clock, progress=False, precision="fp32")
    total = first_part + (clock.now - restart)
    # Each part pays its own setup (3 s), so the whole is within the budget plus one extra setup.
    assert 0.9 * 60 <= total <= 60 + 3.0, total
    assert result.steps > 10


def test_the_learning_rate_follows_the_share_of_time_under_a_budget(photos, tmp_path):
    clock = SimulatedClock()
    recipe = costed(photos, clock, step_seconds=5.0)
    seen = []
    cosine = recipe.lr_factor
    recipe.lr_factor = lambda progress: seen.append(progress) or cosine(progress)
    fit(recipe, tmp_path / "lr.safetensors", minutes=1, clock=clock, progress=False, precision="fp32")
    assert seen[0] == 0.0 and seen[-1] > 0.9 and seen == sorted(seen)
    assert cosine(0.0) == pytest.approx(1.0) and cosine(1.0) == pytest.approx(0.1)
    assert stage_at([Stage("a", 0.25, 16), Stage("b", 0.75, 16)], 0.3) == 1


def test_the_bf16_probe_picks_bf16_only_where_the_cpu_has_bfloat16_instructions(monkeypatch):
    cpu = torch.device("cpu")
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert precision_mod.cpu_has_bf16() is False
    assert precision_mod.resolve_precision("auto", cpu) == "fp32"
    with pytest.warns(RuntimeWarning, match="no bfloat16 instructions"):   # asked for by name: kept, with a warning
        assert precision_mod.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert precision_mod.cpu_has_bf16() is True
    assert precision_mod.resolve_precision("auto", cpu) == "bf16"
    assert precision_mod.resolve_precision("fp32", cpu) == "fp32"       # always available
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # native bf16: no warning
        assert precision_mod.resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(BrushstreamError, match="fp16 needs a CUDA device"):
        precision_mod.resolve_precision("fp16", cpu)


@pytest.mark.parametrize("has_bf16, expected", [(False, "fp32"), (True, "bf16")])
def test_auto_precision_is_what_the_run_computes_in_and_records(photos, tmp_path, monkeypatch, has_bf16, expected):
    monkeypatch.setattr(precision_mod, "cpu_has_bf16", lambda: has_bf16)
    seen = []
    real_autocast = torch.autocast

    def spy(device_type, dtype=None, **kw):
        seen.append(dtype)
        return real_autocast(device_type, dtype=dtype, **kw)
    monkeypatch.setattr(torch, "autocast", spy)
    clock = SimulatedClock()
    out = tmp_path / "p.safetensors"
    fit(costed(photos, clock, steps=2), out, progress=False)
    assert read_metadata(out)["precision"] == expected
    assert seen == ([torch.bfloat16] * 2 if has_bf16 else [])


@pytest.mark.filterwarnings("ignore:--precision bf16:RuntimeWarning")   # asked for by name on any CPU
def test_bf16_training_reaches_the_losses_of_fp32_on_a_short_run(photos, tmp_path):
    # 10 steps: a CPU without bfloat16 instructions emulates it at several times fp32's cost
    ends = {}
    for precision in ("fp32", "bf16"):
        recipe = costed(photos, SimulatedClock(), steps=10, lr=5e-3)
        totals = [h["total"] for h in fit(recipe, tmp_path / f"{precision}.safetensors", progress=False,
                                          precision=precision).history]
        ends[precision] = sum(totals[-4:]) / 4
        assert ends[precision] < 0.7 * totals[0], (precision, totals)
    assert ends["bf16"] == pytest.approx(ends["fp32"], rel=0.1), ends


def test_final_losses_are_the_mean_of_the_last_tenth_of_a_short_run():
    history = [{"total": float(i)} for i in range(20)]
    assert final_losses(history) == {"total": 18.5}            # the last 2 steps, not the last 50
    assert final_losses([{"total": 3.0}]) == {"total": 3.0}
    long = [{"total": float(i)} for i in range(1000)]
    assert final_losses(long)["total"] == pytest.approx(sum(range(950, 1000)) / 50)


def test_the_recorded_command_names_no_machine_path_and_reruns_from_the_data_folder(photos, tmp_path, monkeypatch):
    import shutil
    data = tmp_path / "data"
    shutil.copytree(photos, data / "content")
    (data / "styles").mkdir()
    shutil.copy(STYLE, data / "styles")
    out = tmp_path / "cmd.safetensors"
    recipe = costed(data / "content", SimulatedClock(), steps=2, style=(str(data / "styles" / "starry_night.jpg"),))
    fit(recipe, out, progress=False, precision="fp32")
    entry = json.loads(out.with_name(out.stem + ".manifest.json").read_text())
    command = entry["recipe"]["command"]
    assert str(tmp_path) not in command and not any(a.startswith("/") for a in shlex.split(command))
    assert entry["recipe"]["content_dir"] == "content"
    assert entry["recipe"]["style"] == ["styles/starry_night.jpg"]
    # From inside the data folder, the recorded command trains the same network.
    monkeypatch.chdir(data)
    args = shlex.split(command)
    assert cli_main(args[1:] + ["-o", str(tmp_path / "again.safetensors"), "-q", "--precision", "fp32"]) == 0
    assert read_metadata(tmp_path / "again.safetensors")["final_losses"] == read_metadata(out)["final_losses"]


def test_a_relative_path_given_from_elsewhere_is_recorded_from_the_data_folder(photos, tmp_path, monkeypatch):
    import shutil
    shutil.copytree(photos, tmp_path / "data" / "content")
    (tmp_path / "data" / "styles").mkdir()
    shutil.copy(STYLE, tmp_path / "data" / "styles")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    recipe = costed("../data/content", SimulatedClock(), style=("../data/styles/starry_night.jpg",))
    values = recipe.relative_values()
    assert values["content_dir"] == "content" and values["style"] == ["styles/starry_night.jpg"]
    assert "../" not in recipe.command()


def test_minutes_must_be_a_positive_number(photos, tmp_path, capsys):
    for bad in ("0", "-1", "nan"):
        code = cli_main(["train", "johnson", "--content-dir", str(photos), "--style", STYLE, "--minutes", bad,
                         "-o", str(tmp_path / "m.safetensors")])
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--minutes must be a positive number" in err[0]
    assert not list(tmp_path.iterdir())


def test_the_gpu_plan_fits_nine_minutes_and_every_command_is_one_the_cli_takes(tmp_path):
    import subprocess
    import sys

    from brushstream.core.cli import build_parser
    script = Path(__file__).resolve().parents[1] / "tools" / "gpu_train_all.py"
    done = subprocess.run([sys.executable, str(script), "--data", str(SHARED_DATA), "--out", str(tmp_path),
                           "--dry-run"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) >= 12
    parser = build_parser()
    minutes = 0.0
    for line in lines:
        name, command = line.split(": ", 1)
        args = parser.parse_args(shlex.split(command)[1:] + ["-o", f"{name}.safetensors"])
        assert args.device == "auto" and args.minutes is not None
        minutes += args.minutes
    assert minutes <= 9.0
    metanet = next(line for line in lines if line.startswith("metanet_styles"))
    assert "candy.jpg" not in metanet and "starry_night.jpg" in metanet   # judged on styles it never saw
