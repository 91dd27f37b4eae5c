"""MSG-Net's released network (21styles.model): imported, and loaded directly, it computes what the authors' code does.

The reference below is written for this test from the authors' description of their ``Net`` (its key names, its
forward pass, its BGR 0-255 convention and its setTarget: the Gram of the style through model1), small (ngf 8, two
blocks) and randomly initialised, and saved as they save it: ``torch.save(state_dict)``, here with the legacy
instance-norm running statistics the released file carries.
"""
import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.foreign import formats
from brushstream.core.foreign.importer import CACHE_ENV, convert_file, import_file, read_state_dict
from brushstream.core.hub import weights as weight_store
from brushstream.core.methods import build
from brushstream.core.nets.pretrained import trained_network

NGF, BLOCKS = 8, 2


# -- the reference layout ----------------------------------------------------------------------------------------

class RefConv(nn.Module):
    """Optional nearest upsample, reflection pad, convolution: its one parameterised child is ``conv2d``."""

    def __init__(self, cin, cout, k, stride=1, upsample=None):
        super().__init__()
        self.upsample, self.pad = upsample, k // 2
        self.conv2d = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.conv2d(F.pad(x, [self.pad] * 4, mode="reflect") if self.pad else x)


class RefBlock(nn.Module):
    """Pre-activation bottleneck, output 4 * planes; ``mode``: "down" (1x1 strided projection), "up" (upsample
    shortcut and 3x3), None (identity shortcut)."""

    def __init__(self, inplanes, planes, stride=1, mode=None):
        super().__init__()
        self.mode = mode
        if mode == "down":
            self.residual_layer = nn.Conv2d(inplanes, planes * 4, 1, stride)
        elif mode == "up":
            self.residual_layer = RefConv(inplanes, planes * 4, 1, upsample=2)
        mid = RefConv(planes, planes, 3, 1, upsample=2) if mode == "up" else RefConv(planes, planes, 3, stride)
        self.conv_block = nn.Sequential(nn.InstanceNorm2d(inplanes), nn.ReLU(), nn.Conv2d(inplanes, planes, 1),
                                        nn.InstanceNorm2d(planes), nn.ReLU(), mid,
                                        nn.InstanceNorm2d(planes), nn.ReLU(), nn.Conv2d(planes, planes * 4, 1))

    def forward(self, x):
        return (self.residual_layer(x) if self.mode else x) + self.conv_block(x)


class RefInspiration(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(1, c, c).uniform_(0.0, 0.02))
        self.G = None

    def forward(self, x):
        p = torch.bmm(self.weight.expand_as(self.G), self.G)
        b, c = x.shape[:2]
        return torch.bmm(p.transpose(1, 2).expand(b, c, c), x.reshape(b, c, -1)).view_as(x)


class RefNet(nn.Module):
    def __init__(self, ngf=NGF, blocks=BLOCKS):
        super().__init__()
        self.model1 = nn.Sequential(RefConv(3, 64, 7), nn.InstanceNorm2d(64), nn.ReLU(),
                                    RefBlock(64, 32, 2, "down"), RefBlock(128, ngf, 2, "down"))
        self.ins = RefInspiration(ngf * 4)
        self.model = nn.Sequential(self.model1, self.ins, *[RefBlock(ngf * 4, ngf) for _ in range(blocks)],
                                   RefBlock(ngf * 4, 32, mode="up"), RefBlock(128, 16, mode="up"),
                                   nn.InstanceNorm2d(64), nn.ReLU(), RefConv(64, 3, 7))

    def setTarget(self, style_bgr255):  # noqa: N802  (the authors' name)
        f = self.model1(style_bgr255)
        b, c, h, w = f.shape
        f = f.reshape(b, c, h * w)
        self.ins.G = torch.bmm(f, f.transpose(1, 2)) / (c * h * w)

    def forward(self, x):
        return self.model(x)


def bgr255(rgb01):
    return rgb01[:, [2, 1, 0]] * 255.0


@torch.no_grad()
def reference_run(net, content_rgb01, style_rgb01):
    """The authors' way: RGB 0-255 swapped to BGR for content and style; BGR 0-255 out, back to RGB 0-1 here."""
    net.setTarget(bgr255(style_rgb01))
    return net(bgr255(content_rgb01))[:, [2, 1, 0]] / 255.0


def legacy_state_dict(net):
    """The state dict as a pre-0.4 PyTorch saved it: every instance norm carried running statistics."""
    sd = dict(net.state_dict())
    for name, module in net.named_modules(remove_duplicate=False):
        if isinstance(module, nn.InstanceNorm2d):
            sd[f"{name}.running_mean"] = torch.zeros(module.num_features)
            sd[f"{name}.running_var"] = torch.ones(module.num_features)
    return sd


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    torch.manual_seed(0)
    net = RefNet().eval()
    with torch.no_grad():   # a random network's output is near 0; spread it over 0-255 so 1e-4 (of 1) is strict
        net.model[-1].conv2d.weight.mul_(150.0)
        net.model[-1].conv2d.bias.copy_(torch.tensor([60.0, 128.0, 190.0]))
    path = tmp_path_factory.mktemp("release") / "21styles.model"
    torch.save(legacy_state_dict(net), path)
    return net, path


def _images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 36, 44, generator=g), torch.rand(1, 3, 48, 40, generator=g)


# -- tests ---------------------------------------------------------------------------------------------------------

def test_the_saved_layout_is_the_releases_and_only_a_complete_consistent_one_matches(release):
    net, path = release
    sd = read_state_dict(path)
    assert any(k.startswith("model1.") for k in sd) and any(k.startswith("model.0.") for k in sd)
    assert "ins.weight" in sd and sd["model.1.weight"].shape == (1, 4 * NGF, 4 * NGF)
    assert any(k.endswith("running_mean") for k in sd)
    fmt = formats()["msgnet_reference"]
    assert fmt.match(sd) == 1.0
    assert fmt.match({k: v for k, v in sd.items() if "running" not in k}) == 1.0     # a file saved by torch >= 0.4
    assert fmt.match({k: v for k, v in sd.items() if not k.startswith("model1.")}) == 1.0   # one copy is enough
    missing = dict(sd)
    del missing["model.3.conv_block.5.conv2d.weight"]
    assert 0.9 < fmt.match(missing) < 1.0
    disagree = {**sd, "model1.0.conv2d.bias": sd["model1.0.conv2d.bias"] + 1}      # copies of one tensor differ
    assert fmt.match(disagree) < 1.0
    assert fmt.match({**sd, "extra.weight": torch.zeros(3)}) < 1.0
    assert fmt.match({"0.weight": torch.zeros(3, 3, 1, 1)}) == 0.0
    # another format's file is not taken for this one
    others = [f for f in formats().values() if f.name != "msgnet_reference" and f.reader == "state_dict"]
    assert all(f.match(sd) < 1.0 for f in others)


def test_imported_network_computes_what_the_reference_does(release, tmp_path):
    net, path = release
    done = import_file(str(path), out_dir=tmp_path)
    assert done.format.name == "msgnet_reference" and done.entry["method"] == "msgnet"
    assert done.entry["styles"] == []
    meta = weight_store.read_metadata(done.path)
    assert meta["arch"] == "msgnet_reference" and json.loads(meta["config"])["ngf"] == NGF
    assert json.loads(meta["config"])["blocks"] == BLOCKS and "MIT" in meta["licence"]
    ours, _, extra = trained_network(str(done.path), "msgnet_reference")
    assert not extra   # no running statistics, no second copy of the encoder
    content, style = _images()
    with torch.no_grad():
        got = ours(content, style)
    want = reference_run(net, content, style)
    assert want.std() > 0.05 and want.mean(dim=(0, 2, 3)).argsort().tolist() == [2, 1, 0]   # spread, B < G < R
    assert (got - want).abs().max() < 1e-4
    # the style matters, through the Gram at the Inspiration layer
    with torch.no_grad():
        other = ours(content, torch.rand(1, 3, 40, 40) * 0.5)
    assert (other - got).abs().max() > 1e-3
    assert torch.allclose(ours(content, ours.style_statistics(style)), got)


def test_msgnet_method_loads_the_imported_file_and_the_original_directly(release, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    net, path = release
    imported = import_file(str(path), out_dir=tmp_path).path
    content, _ = _images()
    style = torch.rand(1, 3, 128, 256, generator=torch.Generator().manual_seed(2))   # brush 2: seen at 256 px
    want = reference_run(net, content, style).clamp(0, 1)
    results = []
    for model in (imported, path):
        m = build("msgnet", model=str(model), brush=2.0)
        assert m.capabilities.fixed_styles == ()
        results.append(m.stylize(content, m.encode_style(style)))
        assert (results[-1] - want).abs().max() < 1e-4
        with pytest.raises(BrushstreamError, match="style images"):
            m.encode_style(0)
    assert list((tmp_path / "cache" / "converted").glob("*.safetensors"))   # the original, converted once
    assert torch.equal(results[0], results[1])


def test_cli_stylizes_with_the_release_file(release, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    _, path = release
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.png"
    Image.new("RGB", (44, 36), (200, 120, 40)).save(photo)
    Image.effect_noise((64, 32), 60).convert("RGB").save(painting)
    out = tmp_path / "out.png"
    assert cli_main(["stylize", str(photo), "--method", "msgnet", "--model", str(path), "--style", str(painting),
                     "--brush", "2", "-o", str(out)]) == 0
    assert Image.open(out).size == (44, 36)


def test_a_broken_release_file_is_refused_in_one_line_naming_it(release, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    _, path = release
    sd = read_state_dict(path)
    missing = {k: v for k, v in sd.items() if k not in ("model.3.conv_block.2.weight",)}
    wrong = {**sd, "model.3.conv_block.8.weight": torch.zeros(4 * NGF, NGF, 3, 3)}
    for name, tensors in (("missing", missing), ("wrong", wrong)):
        bad = tmp_path / f"{name}.model"
        torch.save(tensors, bad)
        assert cli_main(["weights", "import", str(bad), "-o", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(bad) in err and "msgnet_reference" in err, err
        with pytest.raises(BrushstreamError, match="does not fit --format msgnet_reference"):
            convert_file(bad, "msgnet_reference")
        with pytest.raises(BrushstreamError) as exc:
            build("msgnet", model=str(bad))
        assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    assert not list(tmp_path.glob("*.safetensors"))
