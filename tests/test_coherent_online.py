"""Coherent Online Video Style Transfer (core/nets/coherent_online.py, core/methods/coherent_online.py,
core/train/coherent_recipe.py): the exact encoder/decoder split, the composite's warp direction and memory, the
per-frame fallbacks, the mask network learning occlusions, bad mask files, and the CLI."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from brushstream.core.cli import main
from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import save_weights
from brushstream.core.methods import build
from brushstream.core.methods.coherent_online import DEFAULT_MASK, MEMORY
from brushstream.core.nets.coherent_online import MaskNet, feature_flow, johnson_split
from brushstream.core.nets.johnson import TransformNet
from brushstream.core.ops.warp import inside_frame
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.loop import fit

from .test_video_io import make_clip


def _johnson(folder, seed=0, width=4):
    torch.manual_seed(seed)
    net = TransformNet(width, residual_blocks=1)
    for m in net.modules():     # random affine norms: the features differ from channel to channel
        if isinstance(m, torch.nn.InstanceNorm2d) and m.affine:
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.3, 0.3)
    path = folder / f"johnson_{seed}.safetensors"
    save_weights(path, net.state_dict(), {"arch": "johnson_transform", "config": json.dumps(net.config()),
                                          "styles": json.dumps([f"tiny_{seed}"])})
    return path


def _mask_file(folder, bias=20.0):
    """A mask network whose output is sigmoid(bias) everywhere, written through the recipe's export."""
    net = MaskNet()
    with torch.no_grad():
        net.body[-2].weight.zero_()
        net.body[-2].bias.fill_(bias)
    tensors, meta = get_recipe("coherent")().export(net)
    path = folder / f"mask_{bias:g}.safetensors"
    save_weights(path, tensors, meta)
    return path


def _texture(h, w, seed=0):
    torch.manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, h // 4, w // 4), size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


class ShiftFlow:
    """A flow backend that says the frame moved ``dx`` px to the right: flow current -> previous is -dx."""

    def __init__(self, dx):
        self.dx = dx

    def __call__(self, a, b):
        flow = torch.zeros(a.shape[0], 2, *a.shape[-2:])
        flow[:, 0] = -self.dx
        return flow


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coherent")
    return {"model": _johnson(folder), "model_b": _johnson(folder, 1), "one": _mask_file(folder)}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Four smooth random pictures (80 px) as a training folder: no shared data needed."""
    from brushstream.core.io.image import save_image
    folder = tmp_path_factory.mktemp("pictures")
    for i in range(4):
        save_image(_texture(80, 80, 10 + i), folder / f"p{i}.png")
    return folder


def test_the_split_halves_give_the_network_output_exactly(files):
    net = TransformNet(4, residual_blocks=2).eval()
    x = torch.rand(2, 3, 36, 52)
    with torch.no_grad():
        split = johnson_split(net)
        features = split.encode(x)
        assert features.shape[-2:] == (9, 13) and split.stride == 4
        assert torch.equal(split.decode(features), net(x))
        bundled = build("johnson", runtime="eager").net      # the bundled Johnson network, if it loads
        assert torch.equal(johnson_split(bundled).decode(johnson_split(bundled).encode(x)), bundled(x))


def test_without_memory_or_with_traceable_zero_the_stream_is_the_per_frame_result(files):
    frames = torch.cat([_texture(46, 70, 3)[..., :, i:i + 58] for i in range(0, 12, 4)])   # a pan; 46x58: padded
    one = build("coherent", model=str(files["model"]), mask_model=str(files["one"]))
    code = one.encode_style(0)
    per_frame = torch.cat([one.stylize(f[None], code) for f in frames])
    assert torch.allclose(one.stylize(frames, code), per_frame, atol=1e-6)     # batched, still no state
    off = build("coherent", model=str(files["model"]), mask_model=str(files["one"]), traceable=0.0)
    streamed = off.stylize(frames, code, state=off.new_state(flow=ShiftFlow(-4), cut_threshold=0))
    assert torch.equal(streamed, per_frame)
    state = one.new_state(flow=ShiftFlow(-4), cut_threshold=0)
    on = one.stylize(frames, code, state=state)
    assert not state.cuts and MEMORY in state.data
    assert torch.equal(on[0], per_frame[0]) and (on[1:] - per_frame[1:]).abs().amax() > 1e-3


def test_a_trusted_composite_is_reused_and_follows_the_flow(files):
    method = build("coherent", model=str(files["model"]), mask_model=str(files["one"]))
    code = method.encode_style(0)
    first = _texture(32, 48, 5)
    # Zero flow, a changed second frame: with M ~ 1 the decoder gets frame 1's features again.
    second = (first + 0.03 * torch.randn_like(first)).clamp(0, 1)
    state = method.new_state(flow=ShiftFlow(0), cut_threshold=0)
    out1, out2 = (method.stylize(f, code, state=state) for f in (first, second))
    assert (out2 - out1).abs().amax() < 1e-4
    assert (method.stylize(second, code) - out1).abs().amax() > 1e-3       # the per-frame result would differ
    # The picture moves 4 px (one feature cell) to the right: the composite is the previous one moved one cell.
    state = method.new_state(flow=ShiftFlow(4), cut_threshold=0)
    method.stylize(first, code, state=state)
    before = state.data[MEMORY][0]
    moved = torch.roll(first, 4, dims=-1)
    method.stylize(moved, code, state=state)
    after = state.data[MEMORY][0]
    assert torch.allclose(after[..., 1:], before[..., :-1], atol=1e-4)
    assert not torch.allclose(after[..., :-1], before[..., 1:], atol=1e-2)   # the other direction does not fit
    with torch.no_grad():   # the first column came from outside the frame: untraceable, the current features
        assert torch.allclose(after[..., :1], method.split.encode(moved)[..., :1], atol=1e-6)
    state.reset()   # a cut drops the memory: the next frame is per-frame again
    assert torch.equal(method.stylize(moved, code, state=state), method.stylize(moved, code))


def test_the_recipe_runs_exports_and_its_file_loads(files, pictures, tmp_path):
    recipe = get_recipe("coherent")(content_dir=str(pictures), models=(str(files["model"]), str(files["model_b"])),
                                    size=64, steps=6, batch=2)
    out = tmp_path / "mask.safetensors"
    result = fit(recipe, out, progress=False, precision="fp32")
    assert result.steps == 6 and {"coherence", "occlusion", "total"} <= set(result.final_losses)
    assert all(np.isfinite(h["total"]) for h in result.history) and out.with_name("mask.preview.png").is_file()
    method = build("coherent", model=str(files["model"]), mask_model=str(out))
    frames = torch.cat([_texture(32, 48, 2), _texture(32, 48, 2).roll(2, -1)])
    assert method.stylize(frames, method.encode_style(0), state=method.new_state(flow=ShiftFlow(2))).shape == frames.shape


def test_fifty_steps_teach_the_mask_to_tell_occlusions_from_traceable_pixels(files):
    """On one fixed batch of synthetic pairs at 64 px (pasted occluders inside the frame), the loss falls and the mask
    becomes lower on the occluded pixels than on the traceable ones."""
    recipe = get_recipe("coherent")(models=(str(files["model"]), str(files["model_b"])), size=64, lr=1e-2)
    recipe.setup(torch.device("cpu"))
    content = torch.cat([_texture(64, 64, 20 + i) for i in range(4)])
    model = recipe.build_model()
    optimizer = recipe.optimizer(model)
    totals = []
    for step in range(50):
        terms = recipe.losses(model, content, step, torch.Generator().manual_seed(0))   # the same pairs and network
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        totals.append(float(terms["total"].detach()))
    assert np.mean(totals[-5:]) < 0.97 * np.mean(totals[:5])
    pairs = recipe.pairs(content, torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, m, _, _ = recipe.forward_pair(model, recipe.nets[0], pairs)
    truth = F.adaptive_avg_pool2d(pairs.mask, m.shape[-2:])
    inside = inside_frame(feature_flow(pairs.flow, m.shape[-2:], 4))   # out of the frame M is 0 by construction
    reliable, occluded = m[(truth > 0.99) & inside], m[(truth < 0.01) & inside]
    assert occluded.numel() > 20 and float(reliable.mean()) > float(occluded.mean()) + 0.05


def test_bad_mask_files_are_one_line_naming_the_file(files, tmp_path):
    missing = tmp_path / "nowhere.safetensors"
    for source, needle in ((missing, "nowhere.safetensors"), (files["model"], "not coherent_mask")):
        with pytest.raises(BrushstreamError) as err:
            build("coherent", model=str(files["model"]), mask_model=str(source))
        assert str(source) in str(err.value) and needle in str(err.value) and "\n" not in str(err.value)
    from brushstream.core.hub.weights import load_manifest
    if DEFAULT_MASK not in load_manifest():
        with pytest.raises(BrushstreamError, match="brushstream train coherent"):
            build("coherent", model=str(files["model"]))
    with pytest.raises(BrushstreamError, match="traceable"):
        build("coherent", model=str(files["model"]), mask_model=str(files["one"]), traceable=1.5)


def test_the_cli_lists_it_and_runs_video_with_and_without_the_state(files, tmp_path, capsys):
    assert main(["methods"]) == 0
    assert "coherent\tCoherent Online Video Style Transfer" in capsys.readouterr().out
    base = (_texture(48, 80, 7)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    clip = make_clip(tmp_path / "in.mp4", 5, size=(64, 48),
                     frames=[np.ascontiguousarray(base[:, 2 * i:2 * i + 64]) for i in range(5)])
    from brushstream.core.io.image import load_image
    outs = {}
    for flag in ("--temporal", "--no-temporal"):
        folder = tmp_path / flag.strip("-")
        code = main(["video", str(clip), "--method", "coherent", "--model", str(files["model"]), "--mask-model",
                     str(files["one"]), flag, "-q", "-o", str(folder / "f_%03d.png")])
        assert code == 0, capsys.readouterr().err
        outs[flag] = [load_image(p).image for p in sorted(folder.iterdir())]
    assert len(outs["--temporal"]) == len(outs["--no-temporal"]) == 5
    diffs = [float((a - b).abs().max()) for a, b in zip(outs["--temporal"], outs["--no-temporal"])]
    assert diffs[0] < 2 / 255 and max(diffs[1:]) > 4 / 255
