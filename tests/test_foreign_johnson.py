"""Fast neural style networks other projects share (pytorch/examples, rrmina/fast-neural-style-pytorch, the ONNX model
zoo) import into the johnson method and compute what they computed in their own project.

Each foreign layout is rebuilt here as a small module with that project's tensor names and structure (written for
this test), randomly initialised with non-trivial norm parameters and biases, saved the way that project saves it, and
run the way that project runs it (its own input scaling and channel order) to give the reference output.
"""
import io
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.foreign import formats
from brushstream.core.foreign.importer import convert_file, import_file
from brushstream.core.hub.weights import read_metadata
from brushstream.core.methods import build
from brushstream.core.nets.pretrained import trained_network
from brushstream.core.runtime import GRAPH_ARCH, GraphNet

TOL = 1e-4   # on the 0-1 scale


def _photo(seed=0):
    torch.manual_seed(seed)
    return torch.rand(1, 3, 32, 48)


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    """Norm scales away from 1, shifts and biases away from 0: every fold and dropped tensor then matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".norm_layer." in f".{name}" or name.split(".")[-2].startswith("in"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5 if name.endswith("weight")
                        else torch.randn(p.shape, generator=g) * 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]   # a picture's range out: about 0-255
        last.weight.mul_(200)
        last.bias.copy_(128 + torch.randn(last.bias.shape, generator=g) * 20)
    return net.eval()


# -- pytorch/examples fast_neural_style: TransformerNet ----------------------------------------------------------

class _PadConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, upsample=False):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(k // 2)
        self.conv2d = nn.Conv2d(cin, cout, k, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv2d(self.reflection_pad(x))


class _ExamplesBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.in1 = _PadConv(c, c, 3), nn.InstanceNorm2d(c, affine=True)
        self.conv2, self.in2 = _PadConv(c, c, 3), nn.InstanceNorm2d(c, affine=True)

    def forward(self, x):
        return x + self.in2(self.conv2(torch.relu(self.in1(self.conv1(x)))))


class ExamplesNet(nn.Module):
    """pytorch/examples' layout and key names: RGB 0-255 in, about 0-255 out."""

    def __init__(self, w=8, blocks=2):
        super().__init__()
        self.blocks = blocks
        self.conv1, self.in1 = _PadConv(3, w, 9), nn.InstanceNorm2d(w, affine=True)
        self.conv2, self.in2 = _PadConv(w, 2 * w, 3, 2), nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3, self.in3 = _PadConv(2 * w, 4 * w, 3, 2), nn.InstanceNorm2d(4 * w, affine=True)
        for i in range(1, blocks + 1):
            setattr(self, f"res{i}", _ExamplesBlock(4 * w))
        self.deconv1, self.in4 = _PadConv(4 * w, 2 * w, 3, upsample=True), nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2, self.in5 = _PadConv(2 * w, w, 3, upsample=True), nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = _PadConv(w, 3, 9)

    def forward(self, x):
        y = torch.relu(self.in1(self.conv1(x)))
        y = torch.relu(self.in2(self.conv2(y)))
        y = torch.relu(self.in3(self.conv3(y)))
        for i in range(1, self.blocks + 1):
            y = getattr(self, f"res{i}")(y)
        y = torch.relu(self.in4(self.deconv1(y)))
        y = torch.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def examples_reference(net, x):
    return net(x * 255) / 255


# -- rrmina/fast-neural-style-pytorch: TransformerNetwork -----------------------------------------------------------

class _RConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, norm=True):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(k // 2)
        self.conv_layer = nn.Conv2d(cin, cout, k, stride)
        self.norm_layer = nn.InstanceNorm2d(cout, affine=True) if norm else None

    def forward(self, x):
        x = self.conv_layer(self.reflection_pad(x))
        return x if self.norm_layer is None else self.norm_layer(x)


class _RDeconv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_transpose = nn.ConvTranspose2d(cin, cout, 3, 2, 1, 1)
        self.norm_layer = nn.InstanceNorm2d(cout, affine=True)

    def forward(self, x):
        return self.norm_layer(self.conv_transpose(x))


class _RResidual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = _RConv(c, c, 3), _RConv(c, c, 3)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x))) + x


class RrminaNet(nn.Module):
    """rrmina's layout and key names: BGR 0-255 in, BGR about 0-255 out."""

    def __init__(self, w=8, blocks=2):
        super().__init__()
        self.ConvBlock = nn.Sequential(_RConv(3, w, 9), nn.ReLU(), _RConv(w, 2 * w, 3, 2), nn.ReLU(),
                                       _RConv(2 * w, 4 * w, 3, 2), nn.ReLU())
        self.ResidualBlock = nn.Sequential(*[_RResidual(4 * w) for _ in range(blocks)])
        self.DeconvBlock = nn.Sequential(_RDeconv(4 * w, 2 * w), nn.ReLU(), _RDeconv(2 * w, w), nn.ReLU(),
                                         _RConv(w, 3, 9, norm=False))

    def forward(self, x):
        return self.DeconvBlock(self.ResidualBlock(self.ConvBlock(x)))


def rrmina_reference(net, x):
    return net(x.flip(1) * 255).flip(1) / 255   # RGB 0-1 -> BGR 0-255 -> net -> BGR -> RGB 0-1


# -- ONNX -------------------------------------------------------------------------------------------------------

def export_onnx(net, path, opset=9):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 32, 48) * 255,), buffer, input_names=["input1"],
                          output_names=["output1"], opset_version=opset, dynamo=False)
    path.write_bytes(buffer.getvalue())
    return path


def onnx_reference(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: (x * 255).numpy()})[0]) / 255


class SigmoidNet(nn.Module):
    """Not a TransformerNet: kept as an opaque graph (0-255 in and out, as the zoo's)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x / 255 - 0.5)) * 255


# -- helpers --------------------------------------------------------------------------------------------------------

def _loaded_output(path, x):
    """The imported file, loaded as the johnson method loads it, run on RGB 0-1."""
    net, meta, _ = trained_network(str(path), read_metadata(path)["arch"])
    with torch.inference_mode():
        return net(x), meta, net


def _max_diff(a, b):
    return float((a - b).abs().max())


@pytest.fixture
def examples_pth(tmp_path):
    net = _randomise(ExamplesNet(), 1)
    path = tmp_path / "candy.pth"
    torch.save(net.state_dict(), path)
    return net, path


# -- pytorch/examples ------------------------------------------------------------------------------------------------

def test_formats_are_registered_with_their_declared_licences():
    known = formats()
    assert known["pytorch_examples"].licence == "BSD-3-Clause"
    assert known["onnx_zoo"].licence == "BSD-3-Clause" and known["onnx_zoo"].reader == "onnx"
    assert "academic or research use" in known["rrmina"].licence   # the README's terms, not an OSI licence


def test_pytorch_examples_import_computes_what_the_example_computes(examples_pth, tmp_path):
    net, pth = examples_pth
    done = import_file(str(pth), out_dir=tmp_path / "out")
    assert done.format.name == "pytorch_examples" and done.entry["licence"] == "BSD-3-Clause"
    x = _photo()
    ours, meta, loaded = _loaded_output(done.path, x)
    assert json.loads(meta["config"]) == {"arch": "johnson_transform", "width": 8, "residual_blocks": 2}
    with torch.no_grad():
        ref = examples_reference(net, x)
    assert _max_diff(ours, ref) < TOL
    assert float(ref.std()) > 0.05   # a real test: the network does not output a constant
    # A flat patch: its first convolution's variance is then near the norm's epsilon on the 0-1 scale, so the
    # 0-255 input has to be folded into the weights, not left to the norm.
    flat = 0.5 + 0.02 * x
    with torch.no_grad():
        assert _max_diff(loaded(flat), examples_reference(net, flat)) < TOL

    method = build("johnson", model=str(done.path), runtime="eager")
    assert method.capabilities.fixed_styles == ("candy",)   # named after the original file
    y = method.stylize(x, method.encode_style("candy"))
    assert _max_diff(y, ref.clamp(0, 1)) < TOL


def test_pytorch_examples_paper_size_and_legacy_running_stats(tmp_path):
    """The example's own size (32 wide, 5 blocks) is read from the shapes; a file saved before PyTorch 0.4 carries
    running statistics, which are dropped as the example's stylize() drops them."""
    net = _randomise(ExamplesNet(32, 5), 2)
    sd = net.state_dict()
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            sd[f"{name}.running_mean"] = torch.randn(module.num_features)
            sd[f"{name}.running_var"] = torch.rand(module.num_features) + 0.5
    assert "res3.in2.running_var" in sd
    path = tmp_path / "mosaic.model"
    torch.save(sd, path)
    converted, fmt = convert_file(path)
    assert fmt.name == "pytorch_examples" and converted.config == {"width": 32, "residual_blocks": 5}
    done = import_file(str(path), out_dir=tmp_path)
    x = _photo(1)
    ours, _, _ = _loaded_output(done.path, x)
    with torch.no_grad():
        assert _max_diff(ours, examples_reference(net, x)) < TOL


def test_model_option_takes_the_original_file_and_converts_it_once(examples_pth, tmp_path, monkeypatch):
    net, pth = examples_pth
    monkeypatch.setenv("BRUSHSTREAM_CACHE", str(tmp_path / "cache"))
    x = _photo(2)
    method = build("johnson", model=str(pth), runtime="eager")
    with torch.no_grad():
        ref = examples_reference(net, x).clamp(0, 1)
    assert _max_diff(method.stylize(x, method.encode_style(0)), ref) < TOL
    cached = list((tmp_path / "cache" / "converted").glob("*.safetensors"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = build("johnson", model=str(pth), runtime="eager")
    assert again.capabilities.fixed_styles == ("candy",)
    assert cached[0].stat().st_mtime_ns == stamp   # converted once


# -- rrmina ------------------------------------------------------------------------------------------------------------

def test_rrmina_import_computes_what_it_computes_in_bgr(tmp_path):
    net = _randomise(RrminaNet(), 3)
    path = tmp_path / "udnie_aggressive.pth"
    torch.save(net.state_dict(), path)
    done = import_file(str(path), out_dir=tmp_path)
    assert done.format.name == "rrmina"
    x = _photo(3)
    ours, meta, loaded = _loaded_output(done.path, x)
    assert json.loads(meta["config"])["upsample"] == "transposed"
    with torch.no_grad():
        ref = rrmina_reference(net, x)
        rgb_as_bgr = net(x * 255) / 255
    assert _max_diff(ours, ref) < TOL
    assert _max_diff(ours, rgb_as_bgr) > 100 * TOL   # the channel order matters, so the test sees it
    method = build("johnson", model=str(done.path))
    assert method.capabilities.fixed_styles == ("udnie_aggressive",)
    assert _max_diff(method.stylize(x, method.encode_style(0)), ref.clamp(0, 1)) < TOL


# -- ONNX --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("opset", [8, 9])
def test_zoo_graph_is_read_into_transform_net(tmp_path, opset):
    """The zoo's files are opset 8 (Upsample's scales an attribute) and 9 (an input); PyTorch exports 9 only, so the
    opset 8 graph is the same one brought down by ONNX's version converter."""
    import onnx
    from onnx import version_converter

    net = _randomise(ExamplesNet(), 4)
    path = export_onnx(net, tmp_path / f"rain-princess-{opset}.onnx")
    if opset == 8:
        path.write_bytes(version_converter.convert_version(onnx.load(str(path)), 8).SerializeToString())
    done = import_file(str(path), out_dir=tmp_path)
    assert done.format.name == "onnx_zoo"
    x = _photo(4)
    ours, meta, loaded = _loaded_output(done.path, x)
    assert meta["arch"] == "johnson_transform"   # rebuilt, not kept as a graph
    assert _max_diff(ours, onnx_reference(path, x)) < TOL
    with torch.no_grad():
        assert _max_diff(ours, examples_reference(net, x)) < TOL
    method = build("johnson", model=str(done.path))
    assert method.capabilities.fixed_styles == ("rain_princess",)


def test_other_image_graph_runs_as_it_is(tmp_path, monkeypatch):
    torch.manual_seed(5)
    net = SigmoidNet().eval()
    path = export_onnx(net, tmp_path / "glow.onnx")
    done = import_file(str(path), out_dir=tmp_path)
    assert done.format.name == "onnx_zoo"
    x = _photo(5)
    ours, meta, loaded = _loaded_output(done.path, x)
    assert meta["arch"] == GRAPH_ARCH and isinstance(loaded, GraphNet)
    assert loaded.graph.numpy().tobytes() == path.read_bytes()   # the graph kept byte for byte
    ref = onnx_reference(path, x)
    assert _max_diff(ours, ref) < TOL
    monkeypatch.setenv("BRUSHSTREAM_CACHE", str(tmp_path / "cache"))
    method = build("johnson", model=str(path))   # --model glow.onnx, through the runtime machinery
    two = torch.cat([x, _photo(6)])              # another batch and size than the export's 1x3x32x48
    y = method.stylize(two[..., :28, :40], method.encode_style("glow"))
    assert method.runner.chosen == "onnx"
    with torch.no_grad():
        assert _max_diff(y, (net(two[..., :28, :40] * 255) / 255).clamp(0, 1)) < TOL


def test_graph_that_is_not_an_image_network_is_refused(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["v"], ["out"])], "g",
                              [helper.make_tensor_value_info("v", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 10])])
    path = tmp_path / "classifier.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    with pytest.raises(BrushstreamError, match=r"unknown layout \(an ONNX graph of 1 nodes.*closest known format: "
                                               r"onnx_zoo \(0% explained\)") as err:
        convert_file(path)
    assert "\n" not in str(err.value)


# -- bad files ------------------------------------------------------------------------------------------------------

class NotATensor:
    """A pickled object weights_only refuses to build."""

    def __init__(self):
        self.payload = "anything"


def test_bad_files_are_refused_in_one_line(examples_pth, tmp_path, capsys):
    net, pth = examples_pth
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(pth.read_bytes()[: pth.stat().st_size // 2])
    pickled = tmp_path / "object.pth"
    torch.save({"net": NotATensor(), "w": torch.zeros(1)}, pickled)
    unknown = tmp_path / "unknown.pth"
    sd = net.state_dict()
    torch.save({k.replace("deconv3", "final"): v for k, v in sd.items()}, unknown)
    nan = tmp_path / "nan.pth"
    sd = {k: v.clone() for k, v in sd.items()}
    sd["in1.weight"][0] = float("nan")
    torch.save(sd, nan)
    cases = {truncated: r"not a readable PyTorch file",
             pickled: r"refused: it holds a \S*NotATensor object.*weights_only=True",
             unknown: r"unknown layout \(\d+ tensors such as conv1.conv2d.weight.*closest known format: "
                      r"pytorch_examples \(90% explained; ValueError: .*'deconv3.conv2d.weight' is missing\)",
             nan: r"'in1.weight' holds NaN or infinite values; the file is damaged"}
    for path, message in cases.items():
        with pytest.raises(BrushstreamError, match=message) as err:
            import_file(str(path), out_dir=tmp_path / "out")
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())   # nothing left behind

    assert cli_main(["weights", "import", str(unknown), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "closest known format: pytorch_examples" in err


def test_a_file_fits_only_the_format_it_is(examples_pth, tmp_path):
    """Each layout explains none of the other's tensors, and --format refuses a file that is not its own."""
    net, pth = examples_pth
    rr = tmp_path / "rr.pth"
    torch.save(_randomise(RrminaNet(), 7).state_dict(), rr)
    examples, rrmina = formats()["pytorch_examples"], formats()["rrmina"]
    sd_examples, sd_rr = torch.load(pth, weights_only=True), torch.load(rr, weights_only=True)
    assert examples.match(sd_examples) == 1.0 and rrmina.match(sd_rr) == 1.0
    assert examples.match(sd_rr) == 0.0 and rrmina.match(sd_examples) == 0.0
    near = dict(sd_examples)
    near.pop("res2.conv2.conv2d.weight")
    assert 0.9 < examples.match(near) < 1.0
    with pytest.raises(BrushstreamError, match="does not fit --format rrmina"):
        convert_file(pth, "rrmina")
