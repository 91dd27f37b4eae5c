"""Flow, warping, reliability masks, scene cuts, the flow-guided blend and the warping-error metric."""

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.flow import flow_backends, get_flow
from brushstream.core.io.image import list_images, load_image
from brushstream.core.methods import build
from brushstream.core.metrics import QualityMetrics, WarpingError
from brushstream.core.ops.warp import backward_warp, reliable_flow_mask
from brushstream.core.temporal import StreamState

from .conftest import SHARED_DATA

VIDEO = SHARED_DATA / "video"


def _frames(clip: str, n: int, long_side: int | None = None) -> list[torch.Tensor]:
    files = list_images(VIDEO / clip)[:n]
    return [load_image(f, long_side=long_side).image for f in files]


def _shifted_pair(dx: int, dy: int):
    photo = load_image(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg").image
    a = photo[..., 40:200, 40:280]
    b = photo[..., 40 - dy:200 - dy, 40 - dx:280 - dx]   # b(x) = a(x - d): a's pixel x sits at x + d in b
    return a, b


def test_backward_warp_aligns_a_known_translation():
    a, b = _shifted_pair(3, -2)
    flow_b_to_a = torch.zeros(1, 2, *a.shape[-2:])
    flow_b_to_a[:, 0], flow_b_to_a[:, 1] = -3.0, 2.0
    warped = backward_warp(a, flow_b_to_a)
    inner = (..., slice(4, -4), slice(4, -4))
    assert (warped - b)[inner].abs().max() < 1e-5
    assert (a - b)[inner].abs().mean() > 0.02            # the frames really differ


@pytest.mark.parametrize("backend,options,tolerance", [("dis", {}, 0.3), ("farneback", {}, 0.3),
                                                       ("dis", {"preset": "fast", "scale": 0.5}, 0.5)])
def test_flow_backends_recover_a_translation(backend, options, tolerance):
    a, b = _shifted_pair(3, -2)
    flow = get_flow(backend, **options)(a, b)
    assert flow.shape == (1, 2, *a.shape[-2:]) and flow.dtype == torch.float32
    centre = flow[..., 20:-20, 20:-20]
    assert abs(float(centre[:, 0].median()) - 3.0) < tolerance and abs(float(centre[:, 1].median()) + 2.0) < tolerance


def test_flow_backend_errors_name_the_choice():
    assert {"dis", "farneback"} <= set(flow_backends())
    with pytest.raises(BrushstreamError, match="unknown flow backend 'raft'"):
        get_flow("raft")
    with pytest.raises(BrushstreamError, match="preset"):
        get_flow("dis", preset="slowest")


def test_reliability_mask_drops_inconsistent_flow_motion_boundaries_and_the_frame_edge():
    h, w = 40, 60
    backward = torch.zeros(1, 2, h, w)
    backward[:, 0] = -2.0
    forward = -backward
    mask = reliable_flow_mask(backward, forward)
    assert mask[..., :, 2:].min() == 1 and mask[..., :, :2].max() == 0      # x - 2 < 0 leaves the frame
    bad_forward = forward.clone()
    bad_forward[..., 10:20, 20:30] = 5.0                                     # the round trip fails here
    mask = reliable_flow_mask(backward, bad_forward)
    assert mask[..., 12:18, 24:30].max() == 0 and mask[..., 30:, 40:].min() == 1
    split = torch.zeros(1, 2, h, w)
    split[..., :, 30:] = 8.0                                                 # two objects moving apart
    mask = reliable_flow_mask(-split, split)
    assert mask[..., :, 29:31].max() == 0 and mask[..., :, 10:20].min() == 1


def test_scene_cuts_reset_the_state_only_where_the_shot_changes():
    state = StreamState("adain", cut_threshold=0.12)
    for clip in ("sam2_dog", "bikes_street", "sam2_juggle"):
        for frame in _frames(clip, 12, long_side=160):
            if state.size is not None and state.size != tuple(frame.shape[-2:]):
                frame = torch.nn.functional.interpolate(frame, size=state.size, mode="area")
            state.begin_frame(frame)
            state.end_frame(frame)
    assert state.cuts == [12, 24]                  # the two joins, nothing inside a shot
    assert state.resets == 2 and state.prev_input is not None


def test_no_false_scene_cuts_in_any_shared_clip():
    for clip in sorted(p.name for p in VIDEO.iterdir() if p.is_dir()):
        state = StreamState("adain")
        for frame in _frames(clip, 60, long_side=160):
            state.begin_frame(frame)
            state.end_frame(frame)
        assert state.cuts == [], clip


def test_warping_error_is_zero_for_a_static_clip_and_grows_with_flicker():
    a, b = _shifted_pair(2, 1)
    metric = WarpingError()
    metric.update(a, a)
    out_e, in_e = metric.update(b, b)
    assert out_e == pytest.approx(in_e) and in_e < 2e-4          # the input's own error: near zero for pure motion
    noisy = WarpingError()
    noisy.update(a, a)
    flicker = (b + 0.1 * torch.randn_like(b)).clamp(0, 1)
    out_f, in_f = noisy.update(b, flicker)
    assert in_f == pytest.approx(in_e, rel=1e-5) and out_f > 20 * in_e
    s = noisy.summary()
    assert s["pairs"] == 1 and s["excess"] == pytest.approx(out_f - in_f)


def test_warping_error_ignores_pixels_the_flow_cannot_explain():
    a, b = _shifted_pair(12, 0)                      # b's left 12 columns are new: they come from outside a
    new_stuff = b.clone()
    new_stuff[..., :, :12] = torch.rand_like(new_stuff[..., :, :12])
    metric = WarpingError()
    metric.update(a, a)
    out_e, in_e = metric.update(b, new_stuff)
    assert out_e < 2 * in_e + 1e-4                   # disoccluded pixels are no flicker
    changed = b.clone()
    changed[..., :, 100:112] = torch.rand_like(changed[..., :, 100:112])
    metric.update(a, a)                              # a new pair: a -> b again, now with visible pixels changed
    out_e, _ = metric.update(b, changed)
    assert out_e > 20 * in_e


@pytest.fixture(scope="module")
def adain_clip():
    model = build("adain")
    style = load_image(SHARED_DATA / "styles" / "starry_night.jpg", long_side=256).image
    return model, style, model.encode_style(style), _frames("carphone_qcif", 16)


def _run(model, code, frames, state):
    return [model.stylize(f, code, state=state) for f in frames]


def test_temporal_state_lowers_warping_error_and_keeps_the_style(adain_clip):
    model, style, code, frames = adain_clip
    per_frame = _run(model, code, frames, None)
    temporal = _run(model, code, frames, model.new_state())
    judge = lambda outs: _warping_error(frames, outs)   # noqa: E731  graded with a different flow (Farneback)
    floor, per_e, temp_e = judge(frames), judge(per_frame), judge(temporal)
    assert per_e > 1.5 * floor                                    # per-frame AdaIN flickers on this clip
    assert (temp_e - floor) < 0.4 * (per_e - floor)               # the blend removes most of the excess
    qm = QualityMetrics()
    targets = qm.style_targets(style)
    gram = lambda outs: sum(qm.style_distance(o, targets)["gram"] for o in outs[::5])   # noqa: E731
    assert gram(temporal) < 1.1 * gram(per_frame)


def _warping_error(frames, outputs):
    metric = WarpingError(get_flow("farneback"))
    for f, o in zip(frames, outputs):
        metric.update(f, o)
    return metric.summary()["warping_error"]


def test_strength_zero_is_per_frame_and_the_blend_follows_the_reliability_mask(adain_clip):
    model, _, code, frames = adain_clip
    per_frame = _run(model, code, frames[:4], None)
    zero = _run(model, code, frames[:4], model.new_state(temporal_strength=0.0))
    assert all(torch.equal(a, b) for a, b in zip(per_frame, zero))
    state = model.new_state(temporal_strength=1.0)
    _run(model, code, frames[:2], state)
    before = state.prev_output
    out = model.stylize(frames[2], code, state=state)
    # Recompute what the state should have done: the flow backend is deterministic.
    backward, forward = state.flow(frames[2], frames[1]), state.flow(frames[1], frames[2])
    reliable = reliable_flow_mask(backward, forward).bool().expand_as(out)
    assert 0.5 < float(reliable.float().mean()) < 1.0
    expected_kept = backward_warp(before, backward, mode="bicubic").clamp(0, 1)
    assert torch.allclose(out[reliable], expected_kept[reliable], atol=1e-5)      # strength 1: the warped past
    assert torch.allclose(out[~reliable], per_frame[2][~reliable], atol=1e-5)     # unreliable: the new frame
    assert state.frame_index == 3 and torch.equal(state.prev_output, out)


def test_temporal_strength_is_checked():
    with pytest.raises(BrushstreamError, match="temporal strength must be between 0 and 1"):
        build("adain").new_state(temporal_strength=1.5)
