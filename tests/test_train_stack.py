"""The training stack: exact resume, kill -9, signals, DDP equivalence, deterministic data, the losses."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import load_state_dict, sha256_file
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.data import PhotoCrops, PositionSampler, photo_loader
from brushstream.core.train.johnson_recipe import JohnsonRecipe
from brushstream.core.train.loop import TrainingStopped, fit
from brushstream.core.train.losses import gram_style_loss, meanstd_style_loss, temporal_feature_loss, temporal_output_loss
from brushstream.core.train.perceptual import pick_styles

from .conftest import SHARED_DATA

STYLES = SHARED_DATA / "styles"


def tiny(photos, steps=8, **kw):
    settings = dict(content_dir=str(photos), style=(str(STYLES / "starry_night.jpg"),), size=48, steps=steps,
                    batch=2, width=4, residual_blocks=1, style_size=96, storage="float32")
    return JohnsonRecipe(**{**settings, **kw})


def _tensors(path):
    return load_state_dict(path)[0]


def _stop_at(step):
    return lambda p: p.step != step


def test_resumed_training_equals_an_uninterrupted_run_bit_for_bit(photos, tmp_path):
    straight = fit(tiny(photos), tmp_path / "a.safetensors", progress=False)
    with pytest.raises(TrainingStopped, match="stopped at step 5"):
        fit(tiny(photos), tmp_path / "b.safetensors", checkpoint_every=3, callback=_stop_at(5), progress=False)
    assert not (tmp_path / "b.safetensors").exists()
    saved = torch.load(tmp_path / "b.ckpt", weights_only=True)
    assert saved["step"] == 5 and saved["position"] == 10   # the stop itself is checkpointed
    resumed = fit(tiny(photos), tmp_path / "b.safetensors", checkpoint_every=3, resume=True, progress=False)
    a, b = _tensors(tmp_path / "a.safetensors"), _tensors(tmp_path / "b.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == straight.history


def test_a_resumed_run_does_not_prepare_the_model_again(photos, tmp_path, monkeypatch):
    """Preparing (a pruned start, LST's PCA basis) is start-up cost whose result the checkpoint already holds."""
    calls = []
    monkeypatch.setattr(JohnsonRecipe, "prepare_model", lambda self, model: calls.append(model))
    with pytest.raises(TrainingStopped):
        fit(tiny(photos), tmp_path / "p.safetensors", checkpoint_every=3, callback=_stop_at(3), progress=False)
    assert len(calls) == 1
    fit(tiny(photos), tmp_path / "p.safetensors", checkpoint_every=3, resume=True, progress=False)
    assert len(calls) == 1


def test_an_existing_checkpoint_needs_resume_and_the_same_recipe(photos, tmp_path):
    with pytest.raises(BrushstreamError, match="no checkpoint to resume"):
        fit(tiny(photos), tmp_path / "m.safetensors", resume=True, progress=False)
    with pytest.raises(TrainingStopped):
        fit(tiny(photos), tmp_path / "m.safetensors", callback=_stop_at(2), progress=False)
    with pytest.raises(BrushstreamError, match="add --resume"):
        fit(tiny(photos), tmp_path / "m.safetensors", progress=False)
    with pytest.raises(BrushstreamError, match="different recipe.*lr"):
        fit(tiny(photos, lr=0.01), tmp_path / "m.safetensors", resume=True, progress=False)
    # A hyper-parameter added after the checkpoint was made matches only at its default.
    saved = json.loads(tiny(photos).to_json())
    del saved["lr"]
    assert tiny(photos).same_run_as(json.dumps(saved)) == []
    assert tiny(photos, lr=0.01).same_run_as(json.dumps(saved)) == ["lr"]
    (tmp_path / "m.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(BrushstreamError, match="unreadable checkpoint"):
        fit(tiny(photos), tmp_path / "m.safetensors", resume=True, progress=False)


@pytest.mark.parametrize("name", ["johnson", "msgnet", "metanet"])
def test_the_loss_falls_on_a_tiny_set(photos, tmp_path, name):
    extra = {"johnson": dict(width=8), "msgnet": dict(width=8, brush_sizes=(96,)), "metanet": dict(width=8, hidden=8)}[name]
    styles = (str(STYLES / "starry_night.jpg"),) if name == "johnson" else (str(STYLES / "starry_night.jpg"),
                                                                             str(STYLES / "the_great_wave.jpg"))
    recipe = get_recipe(name)(content_dir=str(photos), style=styles, size=48, steps=40, batch=2, lr=5e-3,
                              residual_blocks=1, style_size=96, **extra)
    result = fit(recipe, tmp_path / f"{name}.safetensors", progress=False, preview_every=20)
    totals = [h["total"] for h in result.history]
    assert sum(totals[-5:]) < 0.3 * sum(totals[:5])
    assert (tmp_path / f"{name}.loss.png").stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / f"{name}.previews").iterdir()) == ["step_000020.png", "step_000040.png"]
    # one naming for everything a run writes: the output's stem and what the thing is
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{name}.{what}" for what in ("safetensors", "ckpt", "loss.png", "preview.png", "previews", "manifest.json"))
    meta = load_state_dict(tmp_path / f"{name}.safetensors")[1]
    assert json.loads(meta["recipe"])["steps"] == 40 and meta["recipe_name"] == name
    entry = json.loads((tmp_path / f"{name}.manifest.json").read_text())
    assert entry["sha256"] == sha256_file(tmp_path / f"{name}.safetensors") and entry["method"] == name


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "brushstream.core.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _train_args(photos, out, steps):
    return ["train", "johnson", "--content-dir", photos, "--style", STYLES / "starry_night.jpg", "--size", 48,
            "--steps", steps, "--batch", 2, "--width", 4, "--residual-blocks", 1, "--style-size", 96,
            "--storage", "float32", "--threads", 1, "--checkpoint-every", 2, "-q", "-o", out]


def _wait_for_step(ckpt, step, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ckpt.exists():
            try:
                if torch.load(ckpt, weights_only=True)["step"] >= step:
                    return
            except Exception:  # noqa: BLE001  (a checkpoint is replaced atomically, but may vanish mid-read)
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def test_kill_9_mid_run_then_resume_matches_a_straight_run(photos, tmp_path):
    straight = _cli(*_train_args(photos, tmp_path / "a.safetensors", 14))   # one thread each: both run at once
    killed = _cli(*_train_args(photos, tmp_path / "b.safetensors", 14))
    _wait_for_step(tmp_path / "b.ckpt", 4, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert straight.wait(timeout=300) == 0, straight.communicate()
    step = torch.load(tmp_path / "b.ckpt", weights_only=True)["step"]
    assert 4 <= step < 14 and step % 2 == 0 and not (tmp_path / "b.safetensors").exists()
    resumed = _cli(*_train_args(photos, tmp_path / "b.safetensors", 14), "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    a, b = _tensors(tmp_path / "a.safetensors"), _tensors(tmp_path / "b.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_signal_stops_after_the_step_and_keeps_the_checkpoint(photos, tmp_path):
    signals = {signal.SIGINT: 130, signal.SIGTERM: 143}
    procs = {sig: _cli(*_train_args(photos, tmp_path / f"s{int(sig)}.safetensors", 10_000)) for sig in signals}
    for sig, proc in procs.items():   # one thread each: both run at once
        _wait_for_step(tmp_path / f"s{int(sig)}.ckpt", 2, proc)
        proc.send_signal(sig)
    for sig, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == signals[sig], err
        line = err.strip().splitlines()[-1]
        assert line.startswith("brushstream: stopped at step") and "--resume" in line and "Traceback" not in err
        saved = torch.load(tmp_path / f"s{int(sig)}.ckpt", weights_only=True)
        assert f"stopped at step {saved['step']} " in line
        assert not (tmp_path / f"s{int(sig)}.safetensors").exists()


def test_two_process_ddp_equals_single_process_training_on_the_same_global_batch(photos, tmp_path):
    args = _train_args(photos, tmp_path / "ddp.safetensors", 4)
    args[args.index("--batch") + 1] = 4
    args += ["--precision", "fp32"]   # equal to rounding noise: a property of fp32 sums, not of bf16's 8-bit mantissa
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = _cli(*[a if a != tmp_path / "ddp.safetensors" else tmp_path / "one.safetensors" for a in args])
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "brushstream.core.cli", *map(str, args)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert single.wait(timeout=300) == 0, single.communicate()
    a, meta = load_state_dict(tmp_path / "ddp.safetensors")
    b, _ = load_state_dict(tmp_path / "one.safetensors")
    assert meta["trained_on"] == "cpu x2"
    initial = _tensors_initial(photos)
    assert min((a[k] - initial[k]).abs().max() for k in a) > 1e-3   # every layer moved by about lr or more
    # The same data and the averaged gradients give the same losses at every step...
    ddp_losses = [h["total"] for h in torch.load(tmp_path / "ddp.ckpt", weights_only=True)["history"]]
    one_losses = [h["total"] for h in torch.load(tmp_path / "one.ckpt", weights_only=True)["history"]]
    assert ddp_losses == pytest.approx(one_losses, rel=1e-4)
    # ...and the same weights, except where a gradient is rounding noise: the all-reduce sums in another order
    # and Adam divides a tiny gradient by its own size, so such an element may step the other way.
    total = sum(v.numel() for v in a.values())
    off = sum(int(((a[k] - b[k]).abs() > 1e-5).sum()) for k in a)
    assert off < 0.05 * total, f"{off} of {total} weights differ"


def _tensors_initial(photos):
    return tiny(photos, batch=4).build_model().state_dict()


def test_the_data_depends_on_position_only(photos):
    data = PhotoCrops(photos, 32, seed=3)
    serial = next(photo_loader(data, 4, start_step=2))
    with_workers = next(photo_loader(data, 4, start_step=2, workers=2))
    assert torch.equal(serial, with_workers)
    halves = [next(photo_loader(data, 4, start_step=2, rank=r, world=2)) for r in (0, 1)]
    assert torch.equal(torch.cat(halves), serial)
    assert not torch.equal(serial, next(photo_loader(data, 4, start_step=3)))
    assert not torch.equal(serial, next(photo_loader(PhotoCrops(photos, 32, seed=4), 4, start_step=2)))
    # one epoch visits every photo once
    sampler = iter(PositionSampler(len(data), 0, global_batch=3))
    assert sorted(next(sampler)[0] for _ in range(len(data))) == list(range(len(data)))
    with pytest.raises(BrushstreamError, match="divide evenly"):
        PositionSampler(len(data), 0, global_batch=3, world=2)


def test_losses_measure_what_they_claim():
    torch.manual_seed(0)
    f = {"a": torch.rand(2, 8, 6, 6) * 5}
    grams = {"a": (lambda x: torch.bmm(x.flatten(2), x.flatten(2).transpose(1, 2)) / x[0].numel())(f["a"])}
    assert gram_style_loss(f, grams, {"a": 1.0}) < 1e-10
    assert gram_style_loss({"a": f["a"] * 2}, grams, {"a": 1.0}) > 1.0
    stats = {"a": (f["a"].mean((2, 3), keepdim=True), f["a"].std((2, 3), keepdim=True, unbiased=False))}
    assert meanstd_style_loss(f, stats, {"a": 1.0}) < 1e-8
    assert meanstd_style_loss({"a": f["a"] + 1}, stats, {"a": 1.0}) == pytest.approx(1.0, rel=1e-4)
    frame, prev = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    ones = torch.ones(1, 1, 8, 8)
    # an output that changes exactly as the input's luminance does has no temporal loss
    luma_change = (0.299 * (frame - prev)[:, :1] + 0.587 * (frame - prev)[:, 1:2] + 0.114 * (frame - prev)[:, 2:])
    out_prev = torch.rand(1, 3, 8, 8)
    assert temporal_output_loss(out_prev + luma_change, out_prev, frame, prev, ones) < 1e-12
    assert temporal_output_loss(out_prev + 0.5, out_prev, frame, prev, ones) > 0.01
    assert temporal_output_loss(out_prev + 0.5, out_prev, frame, prev, torch.zeros_like(ones)) == 0
    feats = torch.rand(1, 4, 4, 4)
    assert temporal_feature_loss(feats + 1, feats, ones) == pytest.approx(1.0)
    assert temporal_feature_loss(feats + 1, feats, torch.zeros_like(ones)) == 0


def test_recipes_keep_their_hyper_parameters_as_data_with_sources():
    rows = {r["name"]: r for r in JohnsonRecipe().describe()}
    assert rows["content_layer"]["source"] == "paper" and rows["content_layer"]["value"] == "relu2_2"
    assert rows["steps"]["source"] == "project" and rows["steps"]["paper"] == "40000"
    help_text = subprocess.run([sys.executable, "-m", "brushstream.core.cli", "train", "msgnet", "--help"],
                               capture_output=True, text=True).stdout
    assert "--brush-sizes" in help_text and "--resume" in help_text and "paper" in help_text


def test_bad_training_input_is_one_line(photos, tmp_path, capsys):
    cases = [(["--style", tmp_path / "missing.jpg"], "no such style image"),
             (["--steps", 0], "--steps must be at least 1"),
             (["-o", tmp_path / "model.pt"], "must be a .safetensors file")]
    for extra, message in cases:
        # In-process (the CLI's own main): --threads is left out so the test process keeps its thread count.
        args = _train_args(photos, tmp_path / "x.safetensors", 4)
        at = args.index("--threads")
        args = args[:at] + args[at + 2:] + extra
        code = cli_main([str(a) for a in args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_hosts_get_each_step_and_the_previews_through_the_callback(photos, tmp_path):
    seen = []
    fit(tiny(photos, steps=4), tmp_path / "c.safetensors", preview_every=2, preview_count=2, progress=False,
        callback=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4] and all(p.steps == 4 for p in seen)
    assert set(seen[0].losses) == {"content", "style", "tv", "total"}
    assert [p.preview is not None for p in seen] == [False, True, False, True]
    assert seen[1].preview.shape == (2, 3, 48, 48) and 0 <= float(seen[1].preview.min()) <= float(seen[1].preview.max()) <= 1


def test_crops_are_flipped_half_of_the_time(tmp_path):
    from PIL import Image

    pixels = (torch.rand(48, 48, 3) * 255).to(torch.uint8)
    Image.fromarray(pixels.numpy()).save(tmp_path / "one.png")
    data = PhotoCrops(tmp_path, 48, max_zoom=1.0)
    image = pixels.permute(2, 0, 1).float() / 255
    flips = []
    for position in range(40):
        crop = data[(0, position)]
        assert torch.equal(crop, image) or torch.equal(crop, image.flip(2))
        flips.append(torch.equal(crop, image.flip(2)))
    assert 10 <= sum(flips) <= 30


def test_msgnet_draws_one_style_per_image_and_ddp_ranks_take_their_slice(monkeypatch):
    recipe = get_recipe("msgnet")(style=tuple(str(STYLES / f"{n}.jpg") for n in ("starry_night", "udnie", "mondrian")),
                                  batch=8, brush_sizes=(96, 128))
    single, size = recipe._pick(torch.Generator().manual_seed(3), 8)
    assert len(set(single)) > 1                                   # several styles in one step
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    halves = []
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        picked, rank_size = recipe._pick(torch.Generator().manual_seed(3), 4)
        halves += picked
        assert rank_size == size
    assert halves == single
    paper = get_recipe("msgnet")(style=recipe.style, batch=8, style_per_image=False)
    one, _ = paper._pick(torch.Generator().manual_seed(3), 8)
    assert len(set(one)) == 1 and len(one) == 8


def test_init_from_fine_tunes_a_trained_network_with_a_changed_recipe(photos, tmp_path, capsys):
    source = fit(tiny(photos, steps=4), tmp_path / "src.safetensors", progress=False, loss_curve=False).output
    trained, _ = load_state_dict(source)
    # A changed recipe (another style size): the new run starts from the source's weights, and its first step
    # is warmed up (rate / 50), so Adam's first, gradient-blind step cannot knock the trained weights about.
    tuned = fit(tiny(photos, steps=1, lr=1e-3, style_size=64), tmp_path / "ft.safetensors", init_from=source,
                progress=False, loss_curve=False)
    weights, meta = load_state_dict(tuned.output)
    moved = max(float((weights[k] - trained[k]).abs().max()) for k in trained)
    assert 0 < moved <= 1e-3 / 50 * 1.05
    assert meta["init_from"] == f"{source} sha256:{sha256_file(source)}"
    assert torch.load(tmp_path / "ft.ckpt", weights_only=True)["warmup"] == 50   # kept for --resume
    resumed = fit(tiny(photos, steps=2, lr=1e-3, style_size=64), tmp_path / "ft.safetensors", resume=True,
                  progress=False, loss_curve=False)
    assert load_state_dict(resumed.output)[1]["init_from"] == meta["init_from"]   # provenance survives --resume
    fresh, _ = load_state_dict(fit(tiny(photos, steps=1, lr=1e-9, seed=1), tmp_path / "new.safetensors",
                                   progress=False, loss_curve=False).output)
    assert not all(torch.allclose(fresh[k], trained[k], atol=1e-3) for k in trained)
    # Another architecture, or --init-from with --resume, is one line.
    with pytest.raises(BrushstreamError, match="was trained with"):
        fit(tiny(photos, steps=1, width=8), tmp_path / "w8.safetensors", init_from=source, progress=False)
    with pytest.raises(BrushstreamError, match="use one of them"):
        fit(tiny(photos, steps=1), tmp_path / "ft.safetensors", init_from=source, resume=True, progress=False)
    assert cli_main(["train", "johnson", "--style", str(STYLES / "starry_night.jpg"), "--init-from",
                     str(tmp_path / "missing.safetensors"), "-o", str(tmp_path / "m.safetensors")]) == 2
    assert "missing.safetensors" in capsys.readouterr().err


def test_multi_style_recipes_give_each_image_its_drawn_style(photos):
    """The losses, not only the draw: each image is stylized with, and scored against, the style drawn for it."""
    names = ("starry_night", "udnie", "mondrian")
    for name in ("msgnet", "metanet"):
        recipe = get_recipe(name)(style=tuple(str(STYLES / f"{n}.jpg") for n in names), batch=4, style_size=64,
                                  brush_sizes=(64,)) if name == "msgnet" else \
            get_recipe(name)(style=tuple(str(STYLES / f"{n}.jpg") for n in names), batch=4, style_size=64)
        recipe.setup(torch.device("cpu"))
        seen = []

        def model(content, style):
            seen.append(style)
            return content * 0.5
        recipe.losses(model, torch.rand(4, 3, 32, 32), 0, torch.Generator().manual_seed(3))
        drawn = pick_styles(torch.Generator().manual_seed(3), 3, 4, 4, True)
        if name == "msgnet":
            assert [int(next(i for i, s in enumerate(recipe.styles[64]) if s is img)) for img in seen[0]] == drawn
        else:
            assert torch.equal(seen[0], torch.cat([recipe.stats[i] for i in drawn]))


def test_a_signal_while_the_loss_network_loads_stops_the_run_after_one_step(photos, tmp_path, monkeypatch):
    """Ctrl-C during setup (VGG16 and the style targets loading) is neither lost nor a traceback."""
    import os
    import signal
    recipe = tiny(photos, steps=50)
    real_setup = recipe.setup

    def setup_then_interrupted(device):
        real_setup(device)
        os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(recipe, "setup", setup_then_interrupted)
    with pytest.raises(TrainingStopped, match="stopped at step 1 of 50"):
        fit(recipe, tmp_path / "s.safetensors", progress=False)
    assert torch.load(tmp_path / "s.ckpt", weights_only=True)["step"] == 1
    assert not (tmp_path / "s.safetensors").exists()


@pytest.mark.parametrize("clip", [0.0, 1e-3])
def test_grad_clip_bounds_the_gradient_norm_of_every_step(photos, tmp_path, monkeypatch, clip):
    norms = []
    make_optimizer = JohnsonRecipe.optimizer

    def watched(self, model):
        optimizer = make_optimizer(self, model)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        optimizer.register_step_pre_hook(lambda *_: norms.append(float(torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None])))))
        return optimizer

    monkeypatch.setattr(JohnsonRecipe, "optimizer", watched)
    fit(tiny(photos, steps=3, grad_clip=clip), tmp_path / "c.safetensors", progress=False)
    assert len(norms) == 3
    if clip:
        assert max(norms) <= clip * 1.001
    else:
        assert min(norms) > 1e-2   # the unclipped norms are far above the clip used above
