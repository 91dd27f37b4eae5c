"""Fast Video Multi-Style Transfer: the multi-instance norms (index and blend), the ConvLSTM memory a stream
carries (and keeps across a style switch), the warm start from a ReCoNet, the training sequences' flows, and the
method loading what the recipe exports."""
import json

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.methods import build
from brushstream.core.nets.reconet import ReCoNet
from brushstream.core.nets.video_multistyle import VideoMultiStyleNet, start_from_reconet
from brushstream.core.ops.warp import backward_warp
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.loop import fit
from brushstream.core.train.video_multistyle_recipe import synthetic_sequences

from .conftest import SHARED_DATA

STYLES = tuple(str(SHARED_DATA / "styles" / f"{n}.jpg") for n in ("starry_night", "mosaic", "udnie"))


def _net(styles=3, seed=0):
    torch.manual_seed(seed)
    net = VideoMultiStyleNet(styles, channels=8, blocks=1).eval()
    with torch.no_grad():   # distinct affine sets per style and a live ConvLSTM path
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return net


def test_a_style_index_picks_its_own_affine_set_and_weights_blend_the_sets():
    net, x = _net(), torch.rand(1, 3, 32, 40)
    one_hot = [net(x, torch.eye(3)[i:i + 1])[0] for i in range(3)]
    assert (one_hot[0] - one_hot[1]).abs().mean() > 1e-3
    blended = net(x, torch.tensor([[0.5, 0.5, 0.0]]))[0]
    # The same blend made by hand: a one-style network whose affine sets are the average of styles 0 and 1.
    mixed = VideoMultiStyleNet(1, channels=8, blocks=1).eval()
    state = {k: (v[:2].mean(0, keepdim=True) if k.endswith(("gamma", "beta")) else v)
             for k, v in net.state_dict().items()}
    mixed.load_state_dict(state)
    assert torch.allclose(blended, mixed(x, torch.ones(1, 1))[0], atol=1e-5)


def test_the_convlstm_state_carries_history_and_none_restarts_it():
    net, x = _net(), torch.rand(1, 3, 32, 32)
    w = torch.eye(3)[:1]
    first, state = net(x, w, None)
    second, _ = net(x, w, state)
    assert (first - second).abs().max() > 1e-4          # the same frame again, seen with memory, differs
    again, _ = net(x, w, None)
    assert torch.equal(first, again)


def test_a_fresh_projection_makes_the_network_the_reconet_it_started_from():
    torch.manual_seed(1)
    reconet = ReCoNet("realtime", channels=16, residual_blocks=4).eval()
    with torch.no_grad():
        for p in reconet.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    net = VideoMultiStyleNet(4, channels=16, blocks=2).eval()
    start_from_reconet(net, reconet.state_dict())
    x = torch.rand(2, 3, 32, 48)
    for i in range(4):
        w = torch.eye(4)[i:i + 1].expand(2, -1)
        y, state = net(x, w, None)
        assert torch.allclose(y, reconet(x), atol=1e-5)
        assert torch.allclose(net(x, w, state)[0], reconet(x), atol=1e-5)   # history has no say yet
    with pytest.raises(ValueError):
        start_from_reconet(VideoMultiStyleNet(2, channels=16, blocks=1), reconet.state_dict())


def test_training_sequences_carry_exact_long_term_flow():
    photos = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), size=(48, 48), mode="bicubic",
                                             align_corners=False).clamp(0, 1)
    seq = synthetic_sequences(photos, torch.Generator().manual_seed(0), 4, 3.0)
    assert seq.frames.shape == (2, 4, 3, 48, 48)
    assert torch.equal(seq.frames[:, 0], photos)
    assert torch.allclose(seq.long_flow[:, 3], 3 * seq.short_flow[:, 3])
    # Frame t is frame 0 moved by the long-term flow (up to the illumination drift, a gain per frame).
    for t in (1, 3):
        warped = backward_warp(seq.frames[:, 0], seq.long_flow[:, t])
        gain = (seq.frames[:, t].mean((1, 2, 3)) / warped.mean((1, 2, 3)).clamp_min(1e-6)).view(-1, 1, 1, 1)
        inside = seq.long_mask[:, t].bool().expand_as(warped)
        assert (seq.frames[:, t] - (warped * gain).clamp(0, 1))[inside].abs().mean() < 0.02
    assert seq.short_mask[:, 2].mean() < 1 and seq.long_mask[:, 3].mean() <= seq.long_mask[:, 1].mean()


def _recipe(photos, **kw):
    settings = dict(content_dir=str(photos), style=STYLES, size=32, steps=2, batch=3, lr=5e-3, channels=8,
                    blocks=1, style_size=64, clip_fraction=0.0, start_from="none", storage="float32")
    return get_recipe("video_multistyle")(**{**settings, **kw})


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("vms") / "vms.safetensors"
    result = fit(_recipe(photos), out, progress=False)
    assert {"short_term", "long_term", "style", "content"} <= set(result.history[-1])
    return out


def test_the_method_reads_its_styles_and_a_stream_keeps_memory_across_a_style_switch(trained):
    method = build("video_multistyle", model=str(trained))
    assert method.capabilities.fixed_styles == ("starry_night", "mosaic", "udnie")
    frames = torch.rand(3, 3, 40, 44)
    with torch.no_grad():   # make the memory path matter, so that carrying it shows
        method.net.project.weight.normal_(0, 0.5)
    mosaic, udnie = method.encode_style("mosaic"), method.encode_style("udnie")
    alone = method.stylize(frames, mosaic)                     # no state: every frame from an empty memory
    state = method.new_state()
    assert state.strength == 0.0
    first = method.stylize(frames[:1], mosaic, state=state)
    assert torch.allclose(first, alone[:1], atol=1e-5)
    second = method.stylize(frames[1:2], mosaic, state=state)
    assert (second - alone[1:2]).abs().max() > 1e-3
    memory = state.data["convlstm"]
    switched = method.stylize(frames[2:3], udnie, state=state)   # the switch reuses the memory
    weights = torch.eye(3)[2:3]
    with torch.no_grad():
        expected = method.net(frames[2:3], weights, memory)[0]
    assert torch.allclose(switched, expected.clamp(0, 1), atol=1e-5)
    blend = method.encode_style({"mosaic": 1, "udnie": 1})
    assert torch.allclose(blend.data.float(), torch.tensor([0.0, 0.5, 0.5]))


def test_files_that_are_not_this_network_are_refused_in_one_line(trained, tmp_path):
    with pytest.raises(BrushstreamError, match="missing.safetensors"):
        build("video_multistyle", model=str(tmp_path / "missing.safetensors"))
    from safetensors.torch import load_file, save_file

    from brushstream.core.hub.weights import read_metadata
    meta = dict(read_metadata(trained))
    meta["styles"] = json.dumps(["only_one"])
    save_file(load_file(str(trained)), str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(BrushstreamError, match="names 1 styles"):
        build("video_multistyle", model=str(tmp_path / "bad.safetensors"))
    with pytest.raises(BrushstreamError, match="at least two --style"):
        _recipe(tmp_path, style=STYLES[:1]).check()
