"""The ComfyUI node pack's logic, outside ComfyUI: the pack imports without side effects and exposes the V3 entry
point; loading, encoding and stylizing keep ComfyUI's IMAGE layout, honour every setting, show progress, stop on an
interrupt, leave inference_mode only where autograd needs it, and tile an image that does not fit. The node schemas
themselves are checked inside a real ComfyUI (host_tests/)."""
import asyncio
import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.io.image import load_image
from brushstream.core.ops.resize import resize_long_side
from brushstream.nodes import analysis, host, stylize
from brushstream.nodes.stylize import encode_style, load_model, stylize_images

from .conftest import SHARED_DATA

COMMON = dict(strength=1.0, preserve_color=False, precision="fp32")


def test_importing_the_pack_loads_no_weights():
    code = ("import brushstream, inspect; from brushstream.core.nets import pretrained; "
            "from brushstream.core.hub import weights; "
            "assert pretrained._read.cache_info().currsize == 0; "
            "assert weights._sha256_cached.cache_info().currsize == 0; "
            "import sys; assert not any(m.startswith('brushstream.nodes.v3') for m in sys.modules); "
            "print(inspect.iscoroutinefunction(brushstream.comfy_entrypoint))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr


def test_loads_the_way_comfyui_loads_a_custom_node_folder():
    """ComfyUI imports custom_nodes/<folder>/__init__.py under the folder's own name (often with a dash) and takes
    the V3 path only when the module has no NODE_CLASS_MAPPINGS."""
    root = Path(__file__).resolve().parents[1]
    code = ("import importlib.util, sys, inspect\n"
            f"spec = importlib.util.spec_from_file_location('Brushstream-main', {str(root / '__init__.py')!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['Brushstream-main'] = module\n"
            "spec.loader.exec_module(module)\n"
            "print(hasattr(module, 'NODE_CLASS_MAPPINGS'), inspect.iscoroutinefunction(module.comfy_entrypoint))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]


def test_root_package_exposes_the_entry_point_and_api():
    sys.modules.pop("brushstream", None)
    pkg = importlib.import_module("brushstream")
    assert inspect.iscoroutinefunction(pkg.comfy_entrypoint)
    assert callable(pkg.stylize) and callable(pkg.load)


def _inputs(side=64):
    photo = resize_long_side(load_image(SHARED_DATA / "content_eval" / "skimage_rocket.jpg").image, side)
    style = resize_long_side(load_image(SHARED_DATA / "styles" / "mosaic.jpg").image, side)
    return photo.permute(0, 2, 3, 1), style.permute(0, 2, 3, 1)        # (B, H, W, C) as ComfyUI gives them


def test_stylize_keeps_comfy_layout_and_stylizes_each_image_alone():
    photo, style = _inputs()
    model = load_model("adain", {})
    code = encode_style(model, [style])
    batch = torch.cat([photo, photo.flip(2)])
    out = stylize_images(model, code, batch, **COMMON)
    assert out.shape == batch.shape and out.dtype == torch.float32 and out.device.type == "cpu"
    assert (out - batch).abs().mean() > 0.05                                  # it was stylized
    torch.testing.assert_close(out[1:], stylize_images(model, code, batch[1:], **COMMON), atol=1e-5, rtol=0)


def test_stylize_honours_strength_preserve_color_and_loader_options():
    """Guards: a node that drops strength, preserve_color or a method option."""
    photo, style = _inputs()
    adain = load_model("adain", {})
    code = encode_style(adain, [style])
    full = stylize_images(adain, code, photo, **COMMON)
    light = stylize_images(adain, code, photo, **{**COMMON, "strength": 0.2})
    assert (light - photo).abs().mean() < 0.7 * (full - photo).abs().mean()
    kept = stylize_images(adain, code, photo, **{**COMMON, "preserve_color": True})
    colour = lambda x: x.mean(dim=(1, 2))  # noqa: E731
    assert (colour(kept) - colour(photo)).norm() < 0.5 * (colour(full) - colour(photo)).norm()
    wct = {levels: load_model("wct", {"levels": levels}) for levels in ("relu3_1", "relu3_1,relu2_1,relu1_1")}
    one, three = (stylize_images(m, encode_style(m, [style]), photo, **COMMON) for m in wct.values())
    assert (one - three).abs().mean() > 0.005


def test_two_styles_and_a_mask_paint_two_regions():
    photo, style = _inputs()
    other = torch.rand_like(style) * 0.2 + torch.tensor([0.9, 0.1, 0.1])      # a red noise style
    model = load_model("adain", {})
    code = encode_style(model, [style, other])
    mask = torch.zeros(1, *photo.shape[1:3])
    mask[:, :, : photo.shape[2] // 2] = 1.0                                   # left half: the first style
    out = stylize_images(model, code, photo, mask=mask, **COMMON)
    only_first = stylize_images(model, encode_style(model, [style]), photo, **COMMON)
    half = photo.shape[2] // 2
    left = (out[:, :, : half - 8] - only_first[:, :, : half - 8]).abs().mean()
    right = (out[:, :, half + 8:] - only_first[:, :, half + 8:]).abs().mean()
    assert left < 0.5 * right
    assert float(out[:, :, half + 8:, 0].mean()) > float(only_first[:, :, half + 8:, 0].mean())   # redder
    with pytest.raises(BrushstreamError, match="exactly two styles"):
        stylize_images(model, encode_style(model, [style]), photo, mask=mask, **COMMON)


def test_style_weights_and_trained_style_text():
    photo, style = _inputs()
    model = load_model("adain", {})
    styles = torch.cat([style, style.flip(1)])
    assert encode_style(model, [styles], "0.7, 0.3").weights == pytest.approx((0.7, 0.3))
    with pytest.raises(BrushstreamError, match="2 style weights for 1 styles"):
        encode_style(model, [style], "0.5,0.5")
    with pytest.raises(BrushstreamError, match="numbers separated by commas"):
        encode_style(model, [styles], "a,b")
    with pytest.raises(BrushstreamError, match="needs a style"):
        encode_style(model, [None, None])
    assert stylize.parse_trained_style("udnie:0.7, 0:0.3") == {"udnie": 0.7, 0: 0.3}
    assert stylize.parse_trained_style(" 2 ") == 2 and stylize.parse_trained_style("udnie") == "udnie"


def test_weight_menus_and_sources(monkeypatch):
    decoders = stylize.weight_choices("adain", "decoder")
    encoders = stylize.weight_choices("adain", "encoder")
    assert decoders[0] == "auto" and "adain_student_r31_decoder_w05" in decoders
    assert "student_vgg19n_r31_w0375" in encoders and "student_vgg19n_r31_w0375" not in decoders
    assert "johnson_starry_night" in stylize.weight_choices("johnson", "model")
    # The manifest's role field sorts the files, not their names: a decoder called "pastel" is a decoder.
    from brushstream.core.hub import weights
    real = weights.load_manifest()
    pastel = dataclasses.replace(real["adain_vgg19n_r31_decoder"], name="pastel", role="decoder")
    monkeypatch.setattr(stylize, "load_manifest", lambda: {**real, "pastel": pastel})
    assert "pastel" in stylize.weight_choices("adain", "decoder")
    assert "pastel" not in stylize.weight_choices("adain", "encoder")
    with pytest.raises(BrushstreamError, match="loads no weight file"):
        load_model("gatys", {}, source="some_file.safetensors")
    with pytest.raises(BrushstreamError, match="no such weights file"):
        load_model("johnson", {}, source="/nowhere/x.safetensors")


class _Recorder:
    def __init__(self, total):
        self.total, self.updates = total, []

    def update(self, done, preview=None, total=None):
        self.updates.append((done, preview is not None))
        self.total = total or self.total


def test_gatys_optimises_under_inference_mode_with_progress_and_previews(monkeypatch):
    """ComfyUI runs nodes under torch.inference_mode(); the optimiser must still get gradients, and the user
    sees per-step progress with a live preview."""
    bars = []
    monkeypatch.setattr(host, "Progress", lambda total: bars.append(_Recorder(total)) or bars[-1])
    photo, style = _inputs(32)
    options = dict(steps=10, optimizer="adam", lr=0.05, scales="1.0", style_layers="relu1_1,relu2_1",
                   content_layers="relu2_2")
    with torch.inference_mode():
        model = load_model("gatys", options)
        code = encode_style(model, [style])
        out = stylize_images(model, code, photo, **{**COMMON, "precision": "fp32"})
    assert out.shape == photo.shape and (out - photo).abs().mean() > 0.005
    (bar,) = bars
    steps = [d for d, _ in bar.updates]
    assert bar.total == 10 and steps == sorted(steps) and steps[-1] == 10 and len(steps) >= 10
    assert sum(p for _, p in bar.updates) >= 2                          # previews along the way, not only at the end
    assert model.module.on_step is None                                 # the hook does not outlive the run


def test_an_interrupt_stops_the_batch_and_puts_the_model_back(monkeypatch):
    photo, style = _inputs()
    model = load_model("adain", {})
    code = encode_style(model, [style])
    calls = []

    class Interrupted(Exception):
        pass

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted
    monkeypatch.setattr(host, "check_interrupt", check)
    moves = []
    monkeypatch.setattr(host, "offload_device", lambda: moves.append("back") or torch.device("cpu"))
    with pytest.raises(Interrupted):
        stylize_images(model, code, photo.expand(5, -1, -1, -1), **COMMON)
    assert len(calls) == 3 and moves == ["back"]                        # stopped at the third image, model offloaded


def test_an_image_that_does_not_fit_is_stylized_in_tiles(monkeypatch):
    photo, style = _inputs(700)
    model = load_model("adain", {})
    code = encode_style(model, [style])
    whole = stylize_images(model, code, photo, **COMMON)
    real, sizes = model.module.stylize, []

    def small_memory(x, *a, **k):
        sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > stylize.TILE:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(x, *a, **k)
    monkeypatch.setattr(model.module, "stylize", small_memory)
    tiled = stylize_images(model, code, photo, **COMMON)
    assert tiled.shape == whole.shape and sizes[0] == 700 and max(sizes[1:]) <= stylize.TILE and len(sizes) >= 3
    assert (tiled - whole).abs().mean() < 0.06                          # the same picture, up to tile statistics
    monkeypatch.setattr(model.module, "stylize", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):                     # other errors are not hidden by tiling
        stylize_images(model, code, photo, **COMMON)


def test_tiles_blend_back_to_the_image_exactly_for_a_per_pixel_map():
    image = torch.rand(1, 3, 300, 410)
    out = stylize.stylize_tiled(lambda x: x * 0.5 + 0.1, image, tile=128, overlap=32)
    torch.testing.assert_close(out, image * 0.5 + 0.1, atol=1e-5, rtol=0)


def test_optical_flow_node_sees_the_motion():
    photo, _ = _inputs(96)
    frames = torch.cat([photo[:, :, 8:72], photo[:, :, 4:68], photo[:, :, 0:64]])   # the camera pans left
    pictures = analysis.optical_flow(frames, "dis")
    assert pictures.shape == (2, *frames.shape[1:])
    back = analysis.optical_flow(frames.flip(0), "dis")                  # the same pan, the other way
    centre = (slice(16, -16), slice(16, -16))
    assert (pictures[0][centre] - back[0][centre]).abs().mean() > 0.1    # opposite directions, different hues
    with pytest.raises(BrushstreamError, match="at least 2 frames"):
        analysis.optical_flow(frames[:1])


def test_optical_flow_node_runs_a_trained_flownet_file(tmp_path):
    from brushstream.core.hub import weights as weight_store
    from brushstream.core.train.catalogue import get_recipe

    recipe = get_recipe("flownets")(width=0.125, size=64, content_dir=str(SHARED_DATA / "content"))
    tensors, meta = recipe.export(recipe.build_model().eval())
    path = tmp_path / "fs.safetensors"
    weight_store.save_weights(path, tensors, meta)
    photo, _ = _inputs(64)
    assert analysis.optical_flow(photo.expand(3, -1, -1, -1), "flownet", str(path)).shape == (2, *photo.shape[1:])
    with pytest.raises(BrushstreamError, match="for the flownet backend"):
        analysis.optical_flow(photo.expand(2, -1, -1, -1), "dis", str(path))


def test_evaluate_node_reports_the_bench_figures():
    photo, style = _inputs(64)
    model = load_model("adain", {})
    out = stylize_images(model, encode_style(model, [style]), photo, **COMMON)
    same = analysis.evaluate_stylization(photo, photo, style, size=64)
    styled = analysis.evaluate_stylization(photo, out, style, size=64)
    assert same["content"] == pytest.approx(0.0, abs=1e-6) and same["gram_ratio"] == pytest.approx(1.0)
    assert styled["content"] > 0.1 and styled["gram_ratio"] < 0.9
    clip = analysis.evaluate_stylization(photo.expand(3, -1, -1, -1), out.expand(3, -1, -1, -1), size=64)
    assert clip["pairs"] == 2 and clip["warping_error"] == pytest.approx(0.0, abs=1e-6) and "gram_ratio" not in clip
    assert '"content"' in analysis.report_text(styled)


def test_entry_point_is_a_coroutine_that_needs_comfyui():
    """Outside ComfyUI the entry point fails on ComfyUI's own API, not on the pack (it is only ever awaited by
    ComfyUI; host_tests/ await it there)."""
    from brushstream.nodes import comfy_entrypoint

    with pytest.raises(ImportError, match="comfy"):
        asyncio.run(comfy_entrypoint())


def test_train_node_trains_previews_stops_keeping_its_checkpoint_and_resumes(tmp_path, monkeypatch):
    from brushstream.core.hub.weights import read_metadata
    from brushstream.core.train.loop import TrainingStopped
    from brushstream.nodes import training

    bars = []
    monkeypatch.setattr(host, "Progress", lambda total: bars.append(_Recorder(total)) or bars[-1])
    _, style = _inputs(64)
    run = dict(steps=6, size=32, content_dir=str(SHARED_DATA / "content"), preview_every=2, folder=tmp_path)
    steps_seen = []
    monkeypatch.setattr(host, "interrupted", lambda: len(bars[-1].updates) >= 3 and not steps_seen.append(1))
    with pytest.raises(TrainingStopped, match="stopped at step 3 of 6"):   # the user pressed Cancel at step 3
        training.train_style_model("johnson", style, "mine", **run)
    out, ckpt, styles = training.model_paths("mine", tmp_path)
    assert ckpt.exists() and not out.exists() and (styles / "style_0.png").exists()
    monkeypatch.setattr(host, "interrupted", lambda: False)
    name, preview = training.train_style_model("johnson", style, "mine", **run)      # resume is on by default
    assert name == "mine.safetensors" and out.exists() and read_metadata(out)["steps"] == "6"
    assert [d for d, _ in bars[-1].updates] == [4, 5, 6] and preview.shape == (1, 32, 32, 3)
    assert sum(p for _, p in bars[-1].updates) == 2                        # previews at steps 4 and 6
    model = load_model("johnson", {}, source=str(out))                     # what Load Style Model does with it
    assert stylize_images(model, encode_style(model, [], trained_style="0"), style, **COMMON).shape == style.shape
    with pytest.raises(BrushstreamError, match="already exists"):          # never overwritten by accident
        training.train_style_model("johnson", style, "mine", **{**run, "resume": False})
    with pytest.raises(BrushstreamError, match="model name"):
        training.train_style_model("johnson", style, "../escape", **run)
    with pytest.raises(BrushstreamError, match="unknown style recipe"):
        training.train_style_model("flownet_s", style, "x", **run)


def test_train_node_minutes_reach_the_loop_as_a_budget_with_steps_as_its_cap(tmp_path, monkeypatch):
    from brushstream.nodes import training

    seen = {}

    def fake_fit(recipe, out, **kw):
        seen.update(kw)
        kw["callback"](Progress(3, 40, {"total": 1.0}, 1.0, None, "train", 12.0))
    from brushstream.core.train.loop import Progress
    monkeypatch.setattr(training, "fit", fake_fit)
    bars = []
    monkeypatch.setattr(host, "Progress", lambda total: bars.append(_Recorder(total)) or bars[-1])
    monkeypatch.setattr(training.host, "model_folder", lambda: tmp_path)
    _, style = _inputs(64)
    training.train_style_model("johnson", style, "budget", steps=500, minutes=2.5, folder=tmp_path,
                               content_dir=str(SHARED_DATA / "content"))
    assert seen["minutes"] == 2.5 and seen["max_steps"] == 500
    assert bars[-1].total == 40                      # the bar follows the re-planned step count
    training.train_style_model("johnson", style, "steps", steps=7, folder=tmp_path,
                               content_dir=str(SHARED_DATA / "content"))
    assert seen["minutes"] is None and seen["max_steps"] is None


def _clip(n=8, side=96):
    folder = SHARED_DATA / "video" / "carphone_qcif"
    frames = [resize_long_side(load_image(p).image, side) for p in sorted(folder.glob("frame_*.jpg"))[:n]]
    return torch.cat(frames).permute(0, 2, 3, 1)


def test_stylize_frames_carries_the_state_through_the_batch_and_across_runs_by_stream_id():
    from brushstream.nodes import video

    clip = _clip(6)
    model = load_model("reconet", {})
    code = encode_style(model, [], trained_style="0")
    whole = video.stylize_frames(model, code, clip, **COMMON)
    assert whole.shape == clip.shape
    first = video.stylize_frames(model, code, clip[:3], stream_id="cam", reset=True, **COMMON)
    rest = video.stylize_frames(model, code, clip[3:], stream_id="cam", **COMMON)
    torch.testing.assert_close(torch.cat([first, rest]), whole, atol=1e-5, rtol=0)    # one stream, two runs
    fresh = video.stylize_frames(model, code, clip[3:], **COMMON)                       # no stream id: starts anew
    assert (fresh[0] - whole[3]).abs().mean() > 1e-4
    again = video.stylize_frames(model, code, clip[3:], stream_id="cam", reset=True, **COMMON)
    torch.testing.assert_close(again, fresh, atol=1e-5, rtol=0)                          # reset: the same as fresh
    video.forget_stream("cam")


def test_temporal_state_lowers_the_warping_error_in_the_node():
    """An image method through Stylize Frames: the flow-guided blend makes the clip steadier (Evaluate's figure)."""
    from brushstream.nodes import video

    clip = _clip(8)
    model = load_model("adain", {})
    _, style = _inputs(96)
    code = encode_style(model, [style])
    plain = video.stylize_frames(model, code, clip, temporal_strength=0.0, **COMMON)
    steady = video.stylize_frames(model, code, clip, temporal_strength=0.8, **COMMON)
    e_plain = analysis.evaluate_stylization(clip, plain, size=96)["warping_error"]
    e_steady = analysis.evaluate_stylization(clip, steady, size=96)["warping_error"]
    assert e_steady < 0.8 * e_plain
    with pytest.raises(BrushstreamError, match="temporal strength must be between 0 and 1"):
        video.stylize_frames(model, code, clip, temporal_strength=2.0, **COMMON)
    gatys = load_model("gatys", {"steps": 1})
    with pytest.raises(BrushstreamError, match="feed-forward method for video"):
        video.stylize_frames(gatys, encode_style(gatys, [style]), clip[:2], **COMMON)


def test_streams_are_few_and_tied_to_their_model():
    from brushstream.nodes import video

    a, b = load_model("adain", {}), load_model("adain", {})
    state = video.stream_state(a, "s1", None, False)
    assert video.stream_state(a, "s1", None, False) is state
    assert video.stream_state(b, "s1", None, False) is not state             # another model: a new state
    for i in range(video.MAX_STREAMS + 2):
        video.stream_state(a, f"n{i}", None, False)
    assert len(video._streams) == video.MAX_STREAMS and "s1" not in video._streams


def test_an_interrupt_stops_a_clip_within_one_frame(monkeypatch):
    from brushstream.nodes import video

    model = load_model("reconet", {})
    code = encode_style(model, [], trained_style="0")
    done = []
    real = model.module.stylize
    monkeypatch.setattr(model.module, "stylize", lambda *a, **k: done.append(1) or real(*a, **k))

    class Interrupted(Exception):
        pass
    monkeypatch.setattr(host, "check_interrupt", lambda: (_ for _ in ()).throw(Interrupted) if len(done) == 2 else None)
    with pytest.raises(Interrupted):
        video.stylize_frames(model, code, _clip(6), **COMMON)
    assert len(done) == 2


@pytest.mark.parametrize("node", ["encode", "stylize"])
def test_nodes_make_room_then_run_on_comfyuis_device_and_give_it_back(monkeypatch, node):
    """ComfyUI's convention: free_memory for the model's size, move it to get_torch_device(), work there, and
    return it to the offload device. "cpu:0" stands in for the GPU so the moves can be told apart."""
    photo, style = _inputs()
    model = load_model("adain", {})
    code = encode_style(model, [style]) if node == "stylize" else None
    events = []
    monkeypatch.setattr(host, "torch_device", lambda: torch.device("cpu:0"))
    monkeypatch.setattr(host, "free_memory", lambda required, device: events.append(("free", str(device), required)))
    real_to, real_run = model.module.to, model.module._encode_style if node == "encode" else model.module._stylize
    monkeypatch.setattr(model.module, "to", lambda device: events.append(("move", str(device))) or real_to(device))

    def run(*args, **kwargs):
        events.append(("run",))
        return real_run(*args, **kwargs)
    monkeypatch.setattr(model.module, "_encode_style" if node == "encode" else "_stylize", run)
    if node == "encode":
        encode_style(model, [style])
    else:
        stylize_images(model, code, photo, **COMMON)
    (free, device, required), moved, back = events[0], events[1], events[-1]
    assert (free, device) == ("free", "cpu:0") and required >= host.module_bytes(model.module)
    assert moved == ("move", "cpu:0") and back == ("move", "cpu") and events[2:-1] == [("run",)]   # ran in between
