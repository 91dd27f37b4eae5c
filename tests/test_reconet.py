"""ReCoNet: the two widths, the training pairs with known motion, the temporal losses in the recipe, temporal
training against the same training without it, and the method's runtimes."""
import json

import pytest
import torch

from brushstream.core.methods import build
from brushstream.core.nets.reconet import ReCoNet
from brushstream.core.ops.warp import backward_warp
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.loop import fit
from brushstream.core.train.motion import ClipPairs, smooth_flow, synthetic_pairs

from .conftest import SHARED_DATA

STYLE = str(SHARED_DATA / "styles" / "starry_night.jpg")


def _recipe(photos, **kw):
    settings = dict(content_dir=str(photos), style=(STYLE,), size=48, steps=30, batch=2, lr=5e-3, channels=12,
                    residual_blocks=1, style_size=96, clip_fraction=0.0, storage="float32")
    return get_recipe("reconet")(**{**settings, **kw})


@pytest.mark.parametrize("width", ["paper", "realtime"])
def test_both_widths_keep_the_size_and_return_the_features_the_feature_loss_reads(width):
    net = ReCoNet(width, channels=8, residual_blocks=1)
    y, f = net(torch.rand(2, 3, 40, 56), features=True)
    assert y.shape == (2, 3, 40, 56) and f.shape[-2:] == (10, 14)
    assert y.min() >= 0.5 - 0.588 and y.max() <= 0.5 + 0.588


def test_the_realtime_width_costs_a_small_fraction_of_the_paper_width():
    def macs(net):
        total = 0

        def count(module, inputs, output):
            nonlocal total
            total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            net(torch.rand(1, 3, 64, 64))
        for h in hooks:
            h.remove()
        return total
    assert macs(ReCoNet("realtime")) < 0.02 * macs(ReCoNet("paper"))


def test_synthetic_pairs_carry_their_exact_flow_and_occlusion_mask():
    frames = 0.2 + 0.6 * torch.rand(3, 3, 48, 64)        # away from 0 and 1: no clamping after the gain
    pairs = synthetic_pairs(frames, torch.Generator().manual_seed(1), max_shift=4.0)
    warped = backward_warp(pairs.previous, pairs.flow)
    inside = pairs.mask.bool().expand_as(warped)
    # current = gain * warp(previous) + offset: a per-image affine fit explains it wherever the flow is valid.
    for i in range(3):
        a, b = warped[i][inside[i]], pairs.current[i][inside[i]]
        gain = ((a - a.mean()) * (b - b.mean())).sum() / (a - a.mean()).pow(2).sum()
        assert (b - (gain * a + b.mean() - gain * a.mean())).abs().max() < 1e-4
        assert 0.85 < gain < 1.15
    assert pairs.flow.abs().amax() > 1.0 and pairs.mask.mean() < 1.0
    # Out of the frame = masked: a pure shift to the right leaves a strip the previous frame never saw.
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 3.0
    from brushstream.core.ops.warp import inside_frame
    assert inside_frame(flow)[0, 0, :, -3:].sum() == 0 and inside_frame(flow)[0, 0, :, :5].all()


def test_smooth_flows_are_smooth_and_seeded():
    a = smooth_flow(torch.Generator().manual_seed(3), 2, 32, 32, 5.0)
    b = smooth_flow(torch.Generator().manual_seed(3), 2, 32, 32, 5.0)
    assert torch.equal(a, b)
    assert (a[..., 1:] - a[..., :-1]).abs().max() < 1.0     # no tearing between neighbours


def test_the_temporal_terms_punish_texture_that_does_not_move_with_the_content(photos):
    recipe = _recipe(photos)
    recipe.setup(torch.device("cpu"))
    content = torch.rand(2, 3, 48, 48)
    pattern = (torch.rand(1, 3, 48, 48) - 0.5) * 0.4

    class Follows(torch.nn.Module):          # the output moves with the input
        def forward(self, x, features=False):
            return (x, x) if features else x

    class Stuck(torch.nn.Module):            # a fixed overlay: flickers against the motion
        def forward(self, x, features=False):
            y = (x + pattern).clamp(0, 1)
            return (y, y) if features else y

    follows = recipe.losses(Follows(), content, 0, torch.Generator().manual_seed(0))
    stuck = recipe.losses(Stuck(), content, 0, torch.Generator().manual_seed(0))
    assert stuck["temporal"] > 5 * follows["temporal"]
    assert stuck["feature_temporal"] > 3 * follows["feature_temporal"]   # eq. 6 has no luminance term

    class LoudStuck(Stuck):                  # the same features, ten times larger: eq. 6 is relative here
        def forward(self, x, features=False):
            y = (x + pattern).clamp(0, 1)
            return (y, 10 * y) if features else y

    loud = recipe.losses(LoudStuck(), content, 0, torch.Generator().manual_seed(0))
    assert torch.allclose(loud["feature_temporal"], stuck["feature_temporal"], rtol=1e-4)
    off = _recipe(photos, temporal_weight=0.0, feature_temporal_weight=0.0)
    off.setup(torch.device("cpu"))
    terms = off.losses(Stuck(), content, 0, torch.Generator().manual_seed(0))
    assert terms["temporal"] == 0 and terms["feature_temporal"] == 0


def _pan_clip(folder):
    """A 64-frame clip panning 1 px per frame to the right."""
    from brushstream.core.io.video_writer import VideoWriter
    torch.manual_seed(0)
    base = torch.rand(1, 3, 80, 120)
    base = torch.nn.functional.avg_pool2d(base, 5, 1, 2)          # texture DIS can track
    clip = folder / "pan.mp4"
    with VideoWriter(clip, size=(96, 64), fps=25) as writer:
        for i in range(64):
            writer.write(torch.roll(base, shifts=i, dims=-1)[..., 8:72, 8:104])   # 1 px per frame to the right
    return clip


def test_clip_pairs_skip_the_graded_frames_and_find_the_motion(tmp_path):
    clip = _pan_clip(tmp_path)
    pairs = ClipPairs([clip], first_frame=60, short_side=64)
    assert len(pairs) == 3                                        # frames 60..63 only
    previous, current, flow, mask = pairs.pairs[0]
    u = flow[:, 0][mask[:, 0] > 0]
    assert u.numel() > 0.3 * mask.numel() and abs(float(u.median()) + 1.0) < 0.3   # current -> previous: -1 px
    sample = pairs.sample(torch.Generator().manual_seed(0), 2, 48, torch.device("cpu"))
    assert sample.current.shape == (2, 3, 48, 48) and sample.flow.shape == (2, 2, 48, 48)


def _warping_error(net, seed=5):
    """Mean masked error between an output and the warped output of the moved frame, on held-out pairs."""
    frames = torch.rand(4, 3, 48, 48) * 0.3 + torch.nn.functional.interpolate(torch.rand(4, 3, 6, 6), size=(48, 48),
                                                                               mode="bicubic", align_corners=False)
    p = synthetic_pairs(frames.clamp(0, 1), torch.Generator().manual_seed(seed), 3.0)
    with torch.no_grad():
        change = net(p.current) - backward_warp(net(p.previous), p.flow)
    return float((p.mask * change.pow(2)).mean())


def test_temporal_training_steadies_the_output_against_the_same_training_without_it(photos, tmp_path):
    with_loss = fit(_recipe(photos, steps=30, temporal_weight=200.0, feature_temporal_weight=2.0),
                    tmp_path / "t.safetensors", progress=False)
    fit(_recipe(photos, steps=30, temporal_weight=0.0, feature_temporal_weight=0.0), tmp_path / "n.safetensors",
        progress=False)
    totals = [h["total"] for h in with_loss.history]
    assert sum(totals[-5:]) < 0.5 * sum(totals[:5])
    steady = build("reconet", model=str(tmp_path / "t.safetensors"), runtime="eager").net
    loose = build("reconet", model=str(tmp_path / "n.safetensors"), runtime="eager").net
    assert _warping_error(steady) < 0.7 * _warping_error(loose)
    meta = json.loads(__import__("brushstream.core.hub.weights", fromlist=["x"]).load_state_dict(
        tmp_path / "t.safetensors")[1]["temporal"])
    assert meta == {"output": 200.0, "feature": 2.0}


def test_the_method_runs_onnx_and_eager_alike_and_auto_keeps_one(photos, tmp_path):
    pytest.importorskip("onnxruntime")
    fit(_recipe(photos, steps=2), tmp_path / "m.safetensors", progress=False)
    frames = torch.rand(2, 3, 36, 52)
    outs = {}
    for runtime in ("eager", "onnx", "auto"):
        method = build("reconet", model=str(tmp_path / "m.safetensors"), runtime=runtime)
        code = method.encode_style(0)
        outs[runtime] = method.stylize(frames, code)
        if runtime == "auto":
            assert method.runner.chosen == "eager" and not method.runner._picked   # a first call is not a contest
        if runtime == "onnx":
            assert method.runner.chosen == "onnx" and method.runner._session is not None
    assert outs["eager"].shape == frames.shape
    assert (outs["eager"] - outs["onnx"]).abs().max() < 1e-4
    assert (outs["auto"] - outs["eager"]).abs().max() < 1e-4
    # Video-native: the stream state adds no flow blend, so with per-frame norms a stream equals frame-by-frame
    # output (the folded stream norms are tested in test_fold.py).
    method = build("reconet", model=str(tmp_path / "m.safetensors"), runtime="eager", norm="frame")
    state = method.new_state()
    assert state.strength == 0.0
    streamed = method.stylize(frames, method.encode_style(0), state=state)
    assert torch.allclose(streamed, outs["eager"], atol=1e-5)


def test_clip_fraction_takes_that_share_of_each_batch_from_the_clips(photos, tmp_path):
    _pan_clip(tmp_path)
    recipe = _recipe(photos, clips=str(tmp_path), clip_fraction=0.5, batch=4)
    recipe.setup(torch.device("cpu"))
    pairs = recipe.pairs(torch.rand(4, 3, 48, 48), torch.Generator().manual_seed(0))
    assert pairs.current.shape[0] == 4
    # The clip pairs pan by 1 px (flow -1 in x, nearly uniform); the synthetic ones rotate, zoom and wobble.
    pan = [(pairs.flow[i, 0] + 1).abs().median() < 0.3 and pairs.flow[i, 1].abs().median() < 0.3 for i in range(4)]
    assert pan == [False, False, True, True]


def test_the_threads_option_sets_both_backends(photos, tmp_path):
    pytest.importorskip("onnxruntime")
    fit(_recipe(photos, steps=1), tmp_path / "m.safetensors", progress=False)
    before = torch.get_num_threads()
    try:
        method = build("reconet", model=str(tmp_path / "m.safetensors"), runtime="onnx", threads=1)
        method.stylize(torch.rand(1, 3, 32, 32), method.encode_style(0))
        assert torch.get_num_threads() == 1
        assert method.runner._session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
