"""Feature-level distillation from a registered method: the on-disk teacher cache (hits, misses, a kill), the
teacher term lowering its loss, and bad teachers in one line."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.train.data import PhotoCrops
from brushstream.core.train.johnson_recipe import JohnsonRecipe
from brushstream.core.train.loop import fit
from brushstream.core.train.teacher import Teacher, TeacherCache, parse_teacher_options

from .conftest import SHARED_DATA

STYLE = str(SHARED_DATA / "styles" / "the_great_wave.jpg")


def taught(photos, **kw):
    settings = dict(content_dir=str(photos), style=(STYLE,), size=48, steps=3, batch=2, width=4, residual_blocks=1,
                    style_size=64, storage="float32", teacher="adain")
    return JohnsonRecipe(**{**settings, **kw})


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BRUSHSTREAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "teachers"


def entries(folder):
    return sorted(p for p in folder.rglob("*.safetensors") if not p.name.startswith("."))


def test_a_second_run_with_the_same_crops_finds_every_teacher_output_and_another_seed_misses(photos, tmp_path,
                                                                                              cache_env):
    first = taught(photos)
    fit(first, tmp_path / "a.safetensors", progress=False, precision="fp32")
    assert (first.teacher_net.cache.hits, first.teacher_net.cache.misses) == (0, 6)
    assert len(entries(cache_env)) == 6
    again = taught(photos, style_weight=9.0, lr=3e-3)        # other loss weights and rate: the same crops
    fit(again, tmp_path / "b.safetensors", progress=False, precision="fp32")
    assert (again.teacher_net.cache.hits, again.teacher_net.cache.misses) == (6, 0)
    other = taught(photos, seed=5)
    fit(other, tmp_path / "c.safetensors", progress=False, precision="fp32")
    assert other.teacher_net.cache.misses == 6 and len(entries(cache_env)) == 12
    # Another teacher setting is another identity: nothing of the first is taken for it.
    deeper = Teacher("adain", "level=fast", STYLE, 64)
    assert deeper.identity != first.teacher_net.identity and deeper.cache.folder != first.teacher_net.cache.folder


def test_a_cached_output_is_what_the_teacher_makes_and_a_damaged_entry_is_made_again(photos, cache_env):
    crops = torch.stack([PhotoCrops(photos, 48, seed=0)[(i, i)] for i in range(2)])
    teacher = Teacher("adain", "", STYLE, 64)
    fresh = teacher.outputs(crops)
    plain = Teacher("adain", "", STYLE, 64, cache=False).outputs(crops)
    assert (fresh - plain).abs().max() <= 0.5 / 255 + 1e-6          # cached as 8-bit, as an image would be
    hit = teacher.outputs(crops)
    assert teacher.cache.hits == 2 and torch.equal(hit, fresh)      # a hit gives the very same tensor
    (first,) = [p for p in entries(cache_env) if teacher._key(crops[0]) in p.name]
    first.write_bytes(first.read_bytes()[:100])                      # torn by a disk error
    again = teacher.outputs(crops)
    assert teacher.cache.misses == 3 and torch.equal(again, fresh)
    assert first.stat().st_size > 100                                # rewritten whole


def test_the_cache_survives_a_kill_mid_run(photos, tmp_path, cache_env):
    script = textwrap.dedent(f"""
        import torch
        from brushstream.core.train.data import PhotoCrops
        from brushstream.core.train.teacher import Teacher
        crops = PhotoCrops({str(photos)!r}, 48, seed=0)
        teacher = Teacher("adain", "", {STYLE!r}, 64)
        for position in range(10_000):
            teacher.outputs(crops[(position % len(crops), position)].unsqueeze(0))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    try:
        deadline = time.monotonic() + 120
        while len(entries(cache_env)) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    written = entries(cache_env)
    assert len(written) >= 4
    cache = TeacherCache(written[0].parents[1])
    assert all(cache.get(p.stem, (3, 48, 48)) is not None for p in written)   # every finished entry is whole
    teacher = Teacher("adain", "", STYLE, 64)
    crops = PhotoCrops(photos, 48, seed=0)
    batch = torch.stack([crops[(p % len(crops), p)] for p in range(len(written) + 3)])
    teacher.outputs(batch)
    assert teacher.cache.hits >= len(written) - 1 and teacher.cache.misses >= 3


def test_the_teacher_term_lowers_on_a_tiny_set(photos, tmp_path, cache_env):
    result = fit(taught(photos, steps=16, lr=5e-3, style_weight=0.0, content_weight=0.0, tv_weight=0.0),
                 tmp_path / "t.safetensors", progress=False, precision="fp32")
    curve = [h["teacher"] for h in result.history]
    assert sum(curve[-4:]) < 0.7 * sum(curve[:4]), curve


def test_small_crops_first_then_full_size_each_lower_their_loss(photos, tmp_path):
    recipe = taught(photos, teacher="", steps=24, lr=5e-3, small_first=0.5)
    seen = []
    real = recipe.losses
    recipe.losses = lambda model, content, step, rng: seen.append(content.shape[-1]) or real(model, content, step, rng)
    result = fit(recipe, tmp_path / "s.safetensors", progress=False, precision="fp32")
    assert seen == [32] * 12 + [48] * 12
    small, full = [h["total"] for h in result.history[:12]], [h["total"] for h in result.history[12:]]
    assert sum(small[-4:]) < 0.8 * sum(small[:4]) and sum(full[-4:]) < sum(full[:4]), (small, full)


def test_bad_teachers_are_one_line(photos, tmp_path, capsys, cache_env):
    with pytest.raises(BrushstreamError, match="a teacher must take any style image"):
        Teacher("johnson", "", STYLE, 64)
    with pytest.raises(BrushstreamError, match="expected NAME=VALUE"):
        parse_teacher_options("level")
    base = ["train", "johnson", "--content-dir", str(photos), "--style", STYLE, "--steps", "1", "-o",
            str(tmp_path / "x.safetensors")]
    for extra, why in ((["--teacher", "nosuch"], "unknown method"), (["--teacher", "adain", "--teacher-options",
                                                                      "level=relu9_9"], "level"),
                      (["--teacher", "adain", "--teacher-layer", "relu9_9"], "--teacher-layer must be")):
        assert cli_main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and why in err[0], err
    assert not (tmp_path / "x.safetensors").exists()
