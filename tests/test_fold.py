"""Instance norms folded into their convolutions with a stream's frozen statistics (core/nets/fold.py), and the
ReCoNet method's stream mode that uses them."""
import copy

import pytest
import torch
from torch import nn

from brushstream.core.errors import BrushstreamError
from brushstream.core.methods import build
from brushstream.core.nets.fold import fold_instance_norms
from brushstream.core.nets.johnson import TransformNet
from brushstream.core.nets.reconet import ReCoNet
from brushstream.core.train.loop import fit

from .test_reconet import _recipe


class FrozenNorm(nn.Module):
    """The reference: instance norm with given per-channel statistics instead of the frame's own."""

    def __init__(self, norm, mean, var):
        super().__init__()
        self.norm, self.mean, self.var = norm, mean.view(1, -1, 1, 1), var.view(1, -1, 1, 1)

    def forward(self, x):
        y = (x - self.mean) / torch.sqrt(self.var + self.norm.eps)
        if self.norm.affine:
            y = y * self.norm.weight.view(1, -1, 1, 1) + self.norm.bias.view(1, -1, 1, 1)
        return y


def _frozen_reference(net, calibration):
    """``net`` with each instance norm replaced by FrozenNorm holding ``calibration``'s statistics."""
    stats = {}
    hooks = [m.register_forward_pre_hook(lambda m, i: stats.__setitem__(m, (i[0].mean((0, 2, 3)),
                                                                            i[0].var((0, 2, 3), unbiased=False))))
             for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    net(calibration)
    for h in hooks:
        h.remove()
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, name, FrozenNorm(child, *stats[child]))
    return net


def _with_random_affine(net):
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.InstanceNorm2d) and m.affine:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    return net.eval()


@pytest.mark.parametrize("make", [lambda: ReCoNet("realtime", channels=12, residual_blocks=2),
                                  lambda: ReCoNet("paper", channels=8, residual_blocks=1),
                                  lambda: TransformNet()], ids=["reconet_rt", "reconet_paper", "johnson"])
@torch.no_grad()
def test_the_folded_network_is_the_trained_one_with_the_calibration_frames_statistics(make):
    torch.manual_seed(0)
    net = _with_random_affine(make())
    calibration, later = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 48, 64) * 0.6 + 0.3
    folded = fold_instance_norms(net, calibration)
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())   # the original is untouched
    assert torch.allclose(folded(calibration), net(calibration), atol=1e-5)
    # On another frame it keeps the calibration's statistics: not the frame's own, exactly the frozen ones.
    reference = _frozen_reference(copy.deepcopy(net), calibration)
    assert torch.allclose(folded(later), reference(later), atol=1e-5)
    assert (folded(later) - net(later)).abs().max() > 1e-2


def test_a_norm_that_does_not_read_a_convolution_cannot_be_folded():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.InstanceNorm2d(4))
    with pytest.raises(BrushstreamError, match="not a convolution's output"):
        fold_instance_norms(net, torch.rand(1, 3, 16, 16))


@pytest.fixture(scope="module")
def reconet_file(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp("fold") / "m.safetensors"
    fit(_recipe(photos, steps=2), path, progress=False)
    return str(path)


@pytest.mark.parametrize("runtime", ["eager", "onnx"])
def test_a_stream_calibrates_once_per_shot_and_again_after_a_cut_or_a_change_of_light(reconet_file, runtime):
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    base = torch.rand(1, 3, 36, 52)
    shot = torch.cat([(base + 0.02 * torch.randn_like(base)).clamp(0, 1) for _ in range(3)])
    method = build("reconet", model=reconet_file, runtime=runtime)
    per_frame = build("reconet", model=reconet_file, runtime="eager", norm="frame")
    code = method.encode_style(0)
    state = method.new_state()

    def folded_now():
        return state.data["reconet_folded"][0]

    out = method.stylize(shot[:1], code, state=state)
    first = folded_now()
    assert torch.allclose(out, per_frame.stylize(shot[:1], code), atol=1e-4)   # calibrated on this very frame
    rest = method.stylize(shot[1:], code, state=state)
    assert folded_now() is first                                            # no recalibration within the shot
    assert method.runner.chosen == runtime and state.data["reconet_folded"][1].chosen == runtime
    assert not torch.allclose(rest, per_frame.stylize(shot[1:], code), atol=1e-4)   # frozen, not per frame
    darker = shot[-1:] * 0.8                                               # the light changes, no cut
    method.stylize(darker, code, state=state)
    assert folded_now() is not first and not state.cuts
    relit = folded_now()
    method.stylize(torch.rand(1, 3, 36, 52).flip(-1) * 0.3, code, state=state)   # a new shot
    assert state.cuts and folded_now() is not relit


def test_stills_and_the_frame_setting_keep_per_frame_statistics(reconet_file):
    frames = torch.rand(2, 3, 32, 44)
    frame_mode = build("reconet", model=reconet_file, runtime="eager", norm="frame")
    stream_mode = build("reconet", model=reconet_file, runtime="eager")
    code = frame_mode.encode_style(0)
    alone = torch.cat([frame_mode.stylize(f[None], code) for f in frames])
    assert torch.allclose(stream_mode.stylize(frames, code), alone, atol=1e-5)    # no state: a batch of stills
    state = frame_mode.new_state()
    assert torch.allclose(frame_mode.stylize(frames, code, state=state), alone, atol=1e-5)
    assert "reconet_folded" not in state.data


def test_a_recalibrated_onnx_stream_takes_the_new_weights_into_its_graph_without_exporting(reconet_file,
                                                                                            monkeypatch):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    frame = torch.rand(1, 3, 36, 52)
    method = build("reconet", model=reconet_file, runtime="onnx")
    code = method.encode_style(0)
    state = method.new_state()
    method.stylize(frame, code, state=state)                     # the first calibration exports the graph

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")
    monkeypatch.setattr(torch.onnx, "export", no_export)
    darker = frame * 0.8
    out = method.stylize(darker, code, state=state)
    assert method.calibrations == 2
    with torch.no_grad():                                        # 36x52: a multiple of the stride, no padding
        expected = fold_instance_norms(method.net, darker)(darker).clamp(0, 1)
    assert torch.allclose(out, expected, atol=1e-4)             # the new statistics, not the first frame's
