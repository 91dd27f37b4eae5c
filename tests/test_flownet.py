"""FlowNetS/FlowNetC (Dosovitskiy et al. 2015): shapes in both modes, the synthetic pairs' exact flow and occlusion,
the multi-scale EPE loss, a few training steps, and a trained file through the ``flownet`` flow backend."""
import json

import pytest
import torch
import torch.nn.functional as F

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.flow import get_flow
from brushstream.core.flow.flownet import FlowNetC, FlowNetS
from brushstream.core.flow.synthetic import held_out_pairs, make_pairs
from brushstream.core.hub import weights as weight_store
from brushstream.core.io.image import fixed_crops
from brushstream.core.ops.warp import backward_warp
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.flownet_recipe import mean_epe, multiscale_epe

from .conftest import SHARED_DATA

NETS = {"flownets": lambda: FlowNetS(width=0.125), "flownetc": lambda: FlowNetC(width=0.125, max_displacement=8)}


def smooth_photos(n, size, seed=0):
    """Low-frequency random colour fields, a different one per photo: bilinear sampling of them is nearly exact."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bicubic",
                         align_corners=True).clamp(0, 1)


@pytest.fixture(scope="module")
def real_photos():
    return fixed_crops(SHARED_DATA / "content", 64, 4)


@pytest.mark.parametrize("arch", NETS)
def test_train_mode_gives_five_scales_and_eval_mode_full_size_flow_in_pixels(arch):
    torch.manual_seed(0)
    net = NETS[arch]()
    a, b = torch.rand(2, 3, 64, 128), torch.rand(2, 3, 64, 128)
    flows = net(a, b)
    assert [tuple(f.shape) for f in flows] == [(2, 2, 64 // s, 128 // s) for s in (4, 8, 16, 32, 64)]
    with pytest.raises(ValueError, match="multiples of 64"):
        net(a[..., :70], b[..., :70])
    net.eval()
    with torch.no_grad():
        full = net(a, b)
        # eval = flow2 upsampled x4 (bilinear) times div_flow: pixels, not the training units
        assert torch.allclose(full, F.interpolate(flows[0], scale_factor=4, mode="bilinear") * 20.0, atol=1e-5)
        c, d = torch.rand(1, 3, 70, 90), torch.rand(1, 3, 70, 90)
        odd = net(c, d)
        padded = [F.pad(t, (0, 38, 0, 58), mode="replicate") for t in (c, d)]
        assert odd.shape == (1, 2, 70, 90)
        assert torch.allclose(odd, net(*padded)[..., :70, :90], atol=1e-5)   # the crop keeps the top-left corner
        assert torch.allclose(net(c + 0.1, d + 0.1), odd, atol=1e-4)        # the pair's mean is subtracted inside


def test_synthetic_flow_is_exact_backward_warp_reproduces_frame1_where_visible():
    photos = smooth_photos(4, 96)
    f1, f2, flow, occ = make_pairs(photos, torch.Generator().manual_seed(1), augment=False)
    visible = occ[:, 0] < 0.5
    assert 0.02 < 1 - visible.float().mean() < 0.5
    err = (backward_warp(f2, flow) - f1).abs().amax(1)
    assert err[visible].quantile(0.95) < 3e-3 and err[visible].median() < 1e-3   # misses: layer edges in frame 2
    assert (backward_warp(f2, -flow) - f1).abs().amax(1)[visible].median() > 0.03  # the sign matters
    # Real photos: interpolation error where visible, a different picture where occluded.
    photos = fixed_crops(SHARED_DATA / "content", 96, 4)
    f1, f2, flow, occ = make_pairs(photos, torch.Generator().manual_seed(2), augment=False)
    visible = occ[:, 0] < 0.5
    err = (backward_warp(f2, flow) - f1).abs().mean(1)
    assert err[visible].median() < 0.012 and err[~visible].mean() > 4 * err[visible].mean()


def test_occlusion_marks_every_pixel_that_leaves_the_frame_and_the_flow_covers_frame1():
    photos = smooth_photos(3, 64, seed=4)
    _, _, flow, occ = make_pairs(photos, torch.Generator().manual_seed(5), motion=3.0, augment=False)
    xs, ys = torch.arange(64.0).view(1, 64), torch.arange(64.0).view(64, 1)
    x2, y2 = xs + flow[:, 0], ys + flow[:, 1]
    gone = (x2 < 0) | (x2 > 63) | (y2 < 0) | (y2 > 63)
    assert gone.any() and bool((occ[:, 0][gone] == 1).all())
    assert set(occ.unique().tolist()) <= {0.0, 1.0} and torch.isfinite(flow).all()
    assert (occ[:, 0][~gone] == 1).any()   # sprites cover some pixels inside the frame too


def test_pairs_are_deterministic_by_seed_and_augmentation_keeps_the_geometry(real_photos):
    a = make_pairs(real_photos, torch.Generator().manual_seed(7))
    b = make_pairs(real_photos, torch.Generator().manual_seed(7))
    c = make_pairs(real_photos, torch.Generator().manual_seed(8))
    plain = make_pairs(real_photos, torch.Generator().manual_seed(7), augment=False)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[2], c[2])
    assert torch.equal(a[2], plain[2]) and torch.equal(a[3], plain[3]) and not torch.equal(a[0], plain[0])
    assert a[0].min() >= 0 and a[0].max() <= 1
    first = held_out_pairs(SHARED_DATA / "content_eval", 5, 64, seed=3)
    again = held_out_pairs(SHARED_DATA / "content_eval", 5, 64, seed=3)
    assert first[0].shape == (5, 3, 64, 64) and all(torch.equal(x, y) for x, y in zip(first, again))


def test_multiscale_epe_is_zero_for_the_truth_and_weights_each_scale():
    flow = torch.randn(2, 2, 64, 64) * 5
    truth = [F.avg_pool2d(flow, s) / 20.0 for s in (4, 8, 16, 32, 64)]
    assert all(t.item() < 1e-6 for t in multiscale_epe(truth, flow))
    for i, weight in enumerate((0.005, 0.01, 0.02, 0.08, 0.32)):   # flow2 .. flow6, the released training's
        wrong = [t.clone() for t in truth]
        wrong[i][:, 0] += 3.0
        wrong[i][:, 1] += 4.0                    # an end-point error of 5 (x div_flow px) at every pixel
        terms = multiscale_epe(wrong, flow)
        pixels = wrong[i].shape[-1] * wrong[i].shape[-2]
        assert terms[i].item() == pytest.approx(weight * 5 * pixels, rel=1e-4)
        assert sum(t.item() for j, t in enumerate(terms) if j != i) < 1e-6


@pytest.mark.parametrize("arch", NETS)
def test_a_few_steps_of_the_recipe_lower_the_epe_on_a_fixed_batch(arch, real_photos):
    recipe = get_recipe(arch)(width=0.125, size=64, batch=4, lr=1e-3, augment=False, still=0.0,
                              **({"max_displacement": 8} if arch == "flownetc" else {}))
    model = recipe.build_model()
    optimiser = recipe.optimizer(model)
    f1, f2, flow, _ = make_pairs(real_photos, torch.Generator().manual_seed(3), augment=False)
    before = mean_epe(model, f1, f2, flow)
    for step in range(25):
        terms = recipe.losses(model, real_photos, step, torch.Generator().manual_seed(3))
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
    assert set(terms) == {"flow2", "flow3", "flow4", "flow5", "flow6", "total"}
    assert mean_epe(model, f1, f2, flow) < 0.75 * before


def test_a_trained_file_runs_as_the_flownet_backend_at_the_input_size(photos, tmp_path):
    out = tmp_path / "fc.safetensors"
    assert cli_main(["train", "flownetc", "--content-dir", str(photos), "--steps", "2", "--size", "64", "--batch",
                     "2", "--width", "0.125", "--max-displacement", "8", "--corr-stride", "1", "-q", "-o", str(out)]) == 0
    meta = weight_store.read_metadata(out)
    assert meta["arch"] == "flownetc" and json.loads(meta["config"]) == {"width": 0.125, "div_flow": 20.0,
                                                                          "max_displacement": 8, "corr_stride": 1}
    backend = get_flow("flownet", weights=str(out))
    a, b = torch.rand(1, 3, 45, 83), torch.rand(1, 3, 45, 83)
    flow = backend(a, b)
    assert flow.shape == (1, 2, 45, 83) and flow.dtype == torch.float32
    net = FlowNetC(width=0.125, max_displacement=8, corr_stride=1)
    assert net.corr.out_channels == 17 ** 2   # the finer grid: -8..8 in steps of 1
    net.load_state_dict(weight_store.load_state_dict(out)[0])
    with torch.no_grad():
        assert torch.allclose(flow, net.eval()(a, b), atol=1e-5)


def test_the_export_holds_the_configuration_and_a_held_out_epe(tmp_path):
    recipe = get_recipe("flownets")(width=0.125, size=64, content_dir=str(SHARED_DATA / "content"))
    tensors, meta = recipe.export(recipe.build_model().eval())
    assert meta["arch"] == "flownets" and float(meta["epe_synthetic_eval"]) > 0
    assert float(meta["epe_synthetic_eval_zero_flow"]) > 0 and meta["div_flow"] == "20.0"
    path = tmp_path / "fs.safetensors"
    weight_store.save_weights(path, tensors, meta)
    assert get_flow("flownet", weights=str(path))(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)).shape == \
        (1, 2, 64, 64)


def test_missing_or_foreign_weights_fail_in_one_line(tmp_path):
    with pytest.raises(BrushstreamError, match="no_such_flownet") as info:
        get_flow("flownet", weights="no_such_flownet")
    assert "\n" not in str(info.value)
    with pytest.raises(BrushstreamError, match="scale"):
        get_flow("flownet", weights="no_such_flownet", scale=0.05)
    foreign = tmp_path / "other.safetensors"
    weight_store.save_weights(foreign, {"w": torch.zeros(1)}, {"arch": "reconet", "config": "{}"})
    with pytest.raises(BrushstreamError, match="not a FlowNet"):
        get_flow("flownet", weights=str(foreign))


def test_the_working_scale_shrinks_the_frames_and_scales_the_flow_back(tmp_path):
    recipe = get_recipe("flownets")(width=0.125, size=64, content_dir=str(SHARED_DATA / "content"))
    path = tmp_path / "fs.safetensors"
    weight_store.save_weights(path, *recipe.export(recipe.build_model().eval()))
    backend = get_flow("flownet", weights=str(path), scale=0.5)
    seen = []

    def one_pixel_right(a, b):   # stands in for the network: 1 px of motion at whatever size it is given
        seen.append(tuple(a.shape[-2:]))
        return torch.stack((torch.ones_like(a[:, 0]), torch.zeros_like(a[:, 0])), 1)

    backend.net = one_pixel_right
    flow = backend(torch.rand(1, 3, 60, 100), torch.rand(1, 3, 60, 100))
    assert seen == [(30, 50)] and flow.shape == (1, 2, 60, 100)
    assert torch.allclose(flow[:, 0], torch.full((1, 60, 100), 2.0)) and flow[:, 1].abs().max() == 0


def test_motion_scales_the_synthetic_flow(real_photos):
    sizes = []
    for motion in (0.0, 0.5, 1.5):
        _, _, flow, _ = make_pairs(real_photos, torch.Generator().manual_seed(3), motion=motion, augment=False)
        sizes.append(flow.pow(2).sum(1).sqrt().mean().item())
    assert sizes[0] < 1e-4 < sizes[1] < sizes[2]


def test_still_pairs_show_the_same_picture_twice_with_zero_flow_and_leave_the_others_moving():
    photos = smooth_photos(8, 64)
    moving = make_pairs(photos, torch.Generator().manual_seed(4), augment=False)[2]
    assert (moving.norm(dim=1).mean((1, 2)) > 0.5).all()   # without still pairs, every pair moves
    f1, f2, flow, occ = make_pairs(photos, torch.Generator().manual_seed(4), augment=False, still=0.5)
    per_pair = flow.norm(dim=1).mean((1, 2))
    still = per_pair == 0
    assert 0 < int(still.sum()) < 8 and (per_pair[~still] > 0.5).all()
    assert (f2[still] - f1[still]).abs().max() < 1e-5 and occ[still].sum() == 0
    assert (make_pairs(photos, torch.Generator().manual_seed(4), augment=False, still=1.0)[2] == 0).all()
    assert get_recipe("flownetc")(width=0.125, size=64, steps=10).still == 0.1   # a tenth of training pairs


def test_the_recipe_draws_its_pairs_with_its_share_of_still_ones(monkeypatch):
    from brushstream.core.train import flownet_recipe
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return make_pairs(*args, **kwargs)
    monkeypatch.setattr(flownet_recipe, "make_pairs", spy)
    recipe = get_recipe("flownets")(width=0.125, size=64, steps=10, still=0.3)
    recipe.losses(recipe.build_model(), smooth_photos(2, 64), 0, torch.Generator().manual_seed(0))
    assert seen["still"] == 0.3


def test_flownetc_warms_its_rate_up_then_follows_the_cosine():
    rates = {}
    for warmup in (0, 100):
        recipe = get_recipe("flownetc")(width=0.125, size=64, steps=1000, warmup=warmup)
        optimizer = recipe.optimizer(recipe.build_model())
        schedule = recipe.scheduler(optimizer)
        seen = []
        for _ in range(200):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        rates[warmup] = seen
    lr = get_recipe("flownetc")().lr
    assert rates[100][0] == pytest.approx(0.01 * rates[0][0]) and rates[0][0] == pytest.approx(lr)
    assert rates[100][50] < rates[0][50] and rates[100][150] == pytest.approx(rates[0][150])


def test_pixels_without_a_trusted_label_carry_no_loss():
    flow = torch.zeros(1, 2, 64, 64)
    wrong = flow.clone()
    wrong[..., :, 32:] = 40.0                                     # wrong only on the right half
    preds = [F.adaptive_avg_pool2d(wrong / 20, (64 // s, 64 // s)) for s in (4, 8, 16, 32, 64)]
    valid = torch.ones(1, 1, 64, 64)
    assert all(t > 0 for t in multiscale_epe(preds, flow, valid=valid))
    valid[..., :, 32:] = 0
    assert sum(multiscale_epe(preds, flow, valid=valid)[:4]) == 0   # flow6 (1x1) mixes both halves


def test_clip_pairs_join_the_batch_with_their_dis_labels_pointing_from_frame1_to_frame2(tmp_path):
    from .test_reconet import _pan_clip
    _pan_clip(tmp_path)
    recipe = get_recipe("flownetc")(width=0.125, size=64, steps=10, batch=4, clips=str(tmp_path),
                                    clip_fraction=0.5, max_displacement=8, still=0.0)
    recipe.setup(torch.device("cpu"))
    frame1, frame2, flow, valid = recipe.pairs(smooth_photos(4, 64), torch.Generator().manual_seed(0))
    assert frame1.shape == (4, 3, 64, 64) and valid.shape == (4, 1, 64, 64)
    assert (valid[:2] == 1).all() and 0 < valid[2:].mean() < 1   # synthetic labels are exact; DIS's are checked
    # The clip pans 1 px right a frame; frame 1 is the later frame, so its pixels sit 1 px left in frame 2.
    for i in (2, 3):
        u = flow[i, 0][valid[i, 0] > 0]
        assert abs(float(u.median()) + 1) < 0.3
        inside = valid[i:i + 1] > 0
        assert (backward_warp(frame2[i:i + 1], flow[i:i + 1]) - frame1[i:i + 1]).abs()[inside.expand(1, 3, 64, 64)].mean() < 0.03
    terms = recipe.losses(recipe.build_model(), smooth_photos(4, 64), 0, torch.Generator().manual_seed(0))
    assert torch.isfinite(terms["total"])
