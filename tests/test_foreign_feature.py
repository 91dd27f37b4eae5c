"""pytorch-AdaIN's and Linear Style Transfer's released files: imported, and loaded directly, they compute what the
authors' code does: the encoder's features, the decoder's image, and the whole stylization through the adain and lst
methods against the authors' pipeline run here.

The reference networks below are written for this test from the releases' descriptions (their key names, their
forward passes, their RGB 0-1 input and their statistics: pytorch-AdaIN's unbiased variance, LST's uncentred branch
product and biased compress/unzip), at the releases' own sizes (their layouts fix every width) on tiny images, with
random weights scaled so every layer's output stays near unit size, and saved as those projects save them:
``torch.save(state_dict)``.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.foreign import formats
from brushstream.core.foreign.importer import CACHE_ENV, convert_file, import_file
from brushstream.core.hub import weights as weight_store
from brushstream.core.methods import build
from brushstream.core.nets.lst import LinearTransform
from brushstream.core.nets.pretrained import (
    ENCODER_WEIGHTS,
    check_pair,
    normalised_vgg_encoder,
    trained_network,
    vgg_decoder,
)
from brushstream.core.nets.vgg16_encoder import VGG16Encoder

TOL = 1e-4


def _randomise(module: nn.Module, seed: int, out_bias: float | None = None) -> nn.Module:
    """He-normal weights (ReLU networks keep their activations' size layer after layer), small random biases; the
    last convolution scaled down around ``out_bias`` so an image decoder's output lies mostly inside 0..1."""
    g = torch.Generator().manual_seed(seed)
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for m in layers:
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / fan_in) ** 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        if out_bias is not None:
            layers[-1].weight.mul_(0.1)
            layers[-1].bias.fill_(out_bias)
    return module.eval().requires_grad_(False)


def _images(seed, *shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(*s, generator=g) for s in shapes]


# -- pytorch-AdaIN (net.py, function.py, test.py) -------------------------------------------------------------------

def adain_vgg() -> nn.Sequential:
    """Their normalised VGG19 to relu5_4 as one Sequential: 1x1 colour conversion, then per block (2, 2, 4, 4, 4
    convolutions) reflection pad, 3x3 convolution, ReLU, with a ceil-mode max-pool between the blocks."""
    layers, cin = [nn.Conv2d(3, 3, 1)], 3
    for block, (count, cout) in enumerate(((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))):
        if block:
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        for _ in range(count):
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]
            cin = cout
    return nn.Sequential(*layers)


def adain_decoder() -> nn.Sequential:
    """relu4_1 -> RGB: reflection pad + 3x3 convolution, ReLU (not after the last), nearest x2 after 512->256,
    256->128 and 128->64."""
    layers = []
    steps = ((512, 256, True), (256, 256, False), (256, 256, False), (256, 256, False), (256, 128, True),
             (128, 128, False), (128, 64, True), (64, 64, False), (64, 3, None))
    for cin, cout, up in steps:
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
        if up is not None:
            layers.append(nn.ReLU())
        if up:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
    return nn.Sequential(*layers)


def adain_reference(vgg, decoder, content, style, alpha=1.0):
    """Their test.py: the VGG cut at relu4_1 (31 modules), AdaIN with the unbiased variance + 1e-5, the decoder.
    Returns the image and the target features."""
    cut = nn.Sequential(*list(vgg.children())[:31])

    def stats(f):
        flat = f.flatten(2)
        return flat.mean(2)[..., None, None], (flat.var(2) + 1e-5).sqrt()[..., None, None]
    fc, fs = cut(content), cut(style)
    (cm, cs), (sm, ss) = stats(fc), stats(fs)
    feat = alpha * ((fc - cm) / cs * ss + sm) + (1 - alpha) * fc
    return decoder(feat), feat


@pytest.fixture(scope="module")
def adain_files(tmp_path_factory):
    """The release's two files as their download holds them (models/), and the networks they were saved from."""
    root = tmp_path_factory.mktemp("adain") / "models"
    root.mkdir()
    vgg, dec = _randomise(adain_vgg(), 1), _randomise(adain_decoder(), 2, out_bias=0.5)
    torch.save(vgg.state_dict(), root / "vgg_normalised.pth")
    torch.save(dec.state_dict(), root / "decoder.pth")
    return root, vgg, dec


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The conversion cache of the .pth files loaded directly: one for the module, so each original is converted
    once (the full VGG19 is 80 MB)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(folder))
        yield folder


def test_adain_release_files_are_told_apart_by_their_shapes(adain_files):
    root, _, _ = adain_files
    fmt = formats()["adain_release"]
    assert fmt.licence == "MIT" and fmt.source == "naoto0804/pytorch-AdaIN"
    enc, _ = convert_file(root / "vgg_normalised.pth")
    dec, _ = convert_file(root / "decoder.pth")
    assert (enc.role, enc.arch, enc.config) == ("encoder", "vgg19n_encoder", {"depth": "relu5_1"})
    assert (dec.role, dec.arch, dec.metadata["level"], dec.metadata["family"]) == \
        ("decoder", "vgg_decoder", "relu4_1", "vgg19n")
    assert dec.metadata["input_encoder"] == "vgg_normalised.pth" and dec.metadata["variance"] == "unbiased"
    # test.py's own cut (31 modules, to relu4_1) is the same encoder, shallower
    cut = {k: v for k, v in torch.load(root / "vgg_normalised.pth", weights_only=True).items()
           if int(k.split(".")[0]) < 31}
    assert fmt.match(cut) == 1.0 and fmt.convert(cut).config == {"depth": "relu4_1"}


def test_adain_release_encoder_and_decoder_compute_what_the_release_computes(adain_files, cache):
    """Loaded directly as .pth (converted once into the cache): features and image as the release's networks."""
    root, vgg, dec = adain_files
    encoder = normalised_vgg_encoder(str(root / "vgg_normalised.pth"), "relu5_1")
    decoder = vgg_decoder("relu4_1", str(root / "decoder.pth"))
    assert len(list((cache / "converted").glob("*.safetensors"))) == 2
    x, = _images(0, (2, 3, 32, 48))
    ours = encoder(x, ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    theirs, y = {}, x
    for i, layer in enumerate(vgg.children()):
        y = layer(y)
        theirs[i] = y
    for level, index in (("relu1_1", 3), ("relu2_1", 10), ("relu3_1", 17), ("relu4_1", 30), ("relu5_1", 43)):
        assert ours[level].shape == theirs[index].shape
        assert (ours[level] - theirs[index]).abs().max() < TOL, level
    assert ours["relu4_1"].abs().mean() > 0.1   # the features did not fade to nothing through the random layers
    feat = theirs[30]
    diff = (decoder(feat) - dec(feat)).abs().max()
    assert diff < TOL, diff


def test_adain_release_stylizes_as_its_test_script(adain_files, cache, tmp_path):
    """--level relu4_1 --decoder decoder.pth: the decoder names the VGG beside it and its unbiased statistics; once
    imported (brushstream weights import) the .safetensors decoder does the same."""
    root, vgg, dec = adain_files
    content, style = _images(3, (1, 3, 40, 32), (1, 3, 48, 40))
    with torch.no_grad():
        reference, target = adain_reference(vgg, dec, content, style)
    reference = reference.clamp(0, 1)
    assert 0.3 < ((reference > 0) & (reference < 1)).float().mean()   # the comparison is not all clamped away
    method = build("adain", level="relu4_1", decoder=str(root / "decoder.pth"))
    method.context = 0   # Brushstream's reflected surroundings: the one thing the release does not do
    code = method.encode_style(style)
    # the target features (the statistics are the unbiased ones), then the image
    features = method.transfer(method.encoder(content, ("relu4_1",))["relu4_1"], code)
    assert (features - target).abs().max() < TOL, (features - target).abs().max()
    diff = (method.stylize(content, code) - reference).abs().max()
    assert diff < TOL, diff
    # strength is test.py's alpha
    half = method.stylize(content, code, strength=0.5)
    with torch.no_grad():
        assert (half - adain_reference(vgg, dec, content, style, 0.5)[0].clamp(0, 1)).abs().max() < TOL
    # imported somewhere else, the decoder needs its VGG named (--encoder), and says so
    imported = import_file(str(root / "decoder.pth"), out_dir=tmp_path).path
    with pytest.raises(BrushstreamError, match="encoder vgg_normalised.pth, which is not beside it.*pass --encoder"):
        build("adain", level="relu4_1", decoder=str(imported))
    method = build("adain", level="relu4_1", decoder=str(imported), encoder=str(root / "vgg_normalised.pth"))
    method.context = 0
    assert (method.stylize(content, method.encode_style(style)) - reference).abs().max() < TOL
    # the VGG16 encoder's relu4_1 is another network: that pairing is refused
    with pytest.raises(BrushstreamError, match="decodes vgg19n features at relu4_1, but the encoder gives vgg16"):
        check_pair(VGG16Encoder("relu1_1"), method.decoder, "decoder.pth")


# -- Linear Style Transfer (libs/models.py, libs/Matrix.py, TestArtistic.py) ----------------------------------------

# The convolutions of their encoder3/encoder4 after conv1 ("M": a 2x2 max-pool), and of decoder3/decoder4
# (in, out, upsample after; the last has no ReLU).
LST_ENCODER = {"r31": ((3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256)),
               "r41": ((3, 64), (64, 64), "M", (64, 128), (128, 128), "M", (128, 256), (256, 256), (256, 256),
                       (256, 256), "M", (256, 512))}
LST_DECODER = {"r31": (7, ((256, 128, True), (128, 128, False), (128, 64, True), (64, 64, False), (64, 3, False))),
               "r41": (11, ((512, 256, True), (256, 256, False), (256, 256, False), (256, 256, False),
                            (256, 128, True), (128, 128, False), (128, 64, True), (64, 64, False), (64, 3, False)))}


class LstEncoder(nn.Module):
    """encoder3 / encoder4: attributes conv1..convN (conv1 the 1x1 colour conversion), reflection pads, ReLU."""

    def __init__(self, tag):
        super().__init__()
        self.steps = LST_ENCODER[tag]
        self.conv1 = nn.Conv2d(3, 3, 1)
        n = 1
        for step in self.steps:
            if step != "M":
                n += 1
                setattr(self, f"conv{n}", nn.Conv2d(*step, 3))

    def forward(self, x):
        x, n = self.conv1(x), 1
        for step in self.steps:
            if step == "M":
                x = F.max_pool2d(x, 2, 2)
            else:
                n += 1
                x = F.relu(getattr(self, f"conv{n}")(F.pad(x, (1, 1, 1, 1), mode="reflect")))
        return x


class LstDecoder(nn.Module):
    def __init__(self, tag):
        super().__init__()
        self.first, self.steps = LST_DECODER[tag]
        for i, (cin, cout, _) in enumerate(self.steps):
            setattr(self, f"conv{self.first + i}", nn.Conv2d(cin, cout, 3))

    def forward(self, x):
        for i, (_, _, up) in enumerate(self.steps):
            x = getattr(self, f"conv{self.first + i}")(F.pad(x, (1, 1, 1, 1), mode="reflect"))
            if i < len(self.steps) - 1:
                x = F.relu(x)
            if up:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x


class LstBranch(nn.Module):
    """Their CNN: three zero-padded 3x3 convolutions, the output's product with itself / HW (not centred), an FC."""

    def __init__(self, c, m):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(c, c // 2, 3, 1, 1), nn.ReLU(), nn.Conv2d(c // 2, c // 4, 3, 1, 1),
                                   nn.ReLU(), nn.Conv2d(c // 4, m, 3, 1, 1))
        self.fc = nn.Linear(m * m, m * m)

    def forward(self, x):
        y = self.convs(x)
        b, m, h, w = y.shape
        y = y.reshape(b, m, h * w)
        return self.fc((y @ y.transpose(1, 2) / (h * w)).reshape(b, -1))


class LstMulLayer(nn.Module):
    """Their MulLayer: snet/cnet on the centred features, compress and unzip 1x1 with biases, + the style mean."""

    def __init__(self, c, m=32):
        super().__init__()
        self.m = m
        self.snet, self.cnet = LstBranch(c, m), LstBranch(c, m)
        self.compress, self.unzip = nn.Conv2d(c, m, 1), nn.Conv2d(m, c, 1)

    def forward(self, cf, sf):
        c_mean, s_mean = cf.mean((2, 3), keepdim=True), sf.mean((2, 3), keepdim=True)
        cf, sf = cf - c_mean, sf - s_mean
        t = self.snet(sf).view(-1, self.m, self.m) @ self.cnet(cf).view(-1, self.m, self.m)
        z = self.compress(cf)
        b, m, h, w = z.shape
        return self.unzip((t @ z.reshape(b, m, h * w)).view(b, m, h, w)) + s_mean


def _lst_transform(c, seed, fc_scale, unzip_scale, branch_mean):
    """A MulLayer whose target features keep about the content features' size (He init in the FC layers and unzip
    would multiply them by ~100 and leave only float error to compare), and whose output depends on the branches'
    uncentred product and the biases as much as on the rest (the branches' outputs have a mean, as trained ones do).
    The scales suit the features it is fed: the random r41 encoder's (std ~1), the bundled r31 encoder's (std ~3)."""
    mul = _randomise(LstMulLayer(c), seed)
    with torch.no_grad():
        for branch in (mul.snet, mul.cnet):
            branch.fc.weight.mul_(fc_scale)
            branch.convs[4].bias.add_(branch_mean)
        mul.unzip.weight.mul_(unzip_scale)
    return mul


@pytest.fixture(scope="module")
def lst_files(tmp_path_factory):
    """models/ as their download holds it for relu4_1 (vgg_r41, dec_r41, r41) and r31.pth, which pairs with the
    bundled encoder and decoder (their vgg_r31.pth / dec_r31.pth); the reference networks."""
    root = tmp_path_factory.mktemp("lst") / "models"
    root.mkdir()
    nets = {"vgg_r41": _randomise(LstEncoder("r41"), 11), "dec_r41": _randomise(LstDecoder("r41"), 12, out_bias=0.5),
            "r41": _lst_transform(512, 13, 0.3, 0.5, 0.5), "r31": _lst_transform(256, 14, 0.1, 0.2, 0.2)}
    for name, net in nets.items():
        torch.save(net.state_dict(), root / f"{name}.pth")
    bundled = {"vgg_r31": (LstEncoder("r31"), ENCODER_WEIGHTS), "dec_r31": (LstDecoder("r31"), "vgg19_normalised_r31_decoder")}
    for name, (net, source) in bundled.items():   # the release's r31 pair: the bundled files, keys unchanged
        net.load_state_dict(weight_store.load_state_dict(source)[0])
        nets[name] = net.eval().requires_grad_(False)
    return root, nets


def test_lst_release_files_are_told_apart_and_the_module_is_the_authors(lst_files):
    root, _ = lst_files
    fmt = formats()["lst_release"]
    assert fmt.licence == "BSD-2-Clause" and fmt.source == "sunshineatnoon/LinearStyleTransfer"
    kinds = {name: convert_file(root / f"{name}.pth")[0] for name in ("vgg_r41", "dec_r41", "r41", "r31")}
    assert (kinds["vgg_r41"].role, kinds["vgg_r41"].config) == ("encoder", {"depth": "relu4_1"})
    assert (kinds["dec_r41"].role, kinds["dec_r41"].config["level"]) == ("decoder", "relu4_1")
    assert kinds["r41"].role == kinds["r31"].role == "model"
    assert kinds["r41"].config == {"channels": 512, "matrix": 32, "covariance": "uncentred", "bias": True}
    assert kinds["r41"].metadata == {"level": "relu4_1", "family": "vgg19n", "input_encoder": "vgg_r41.pth",
                                     "decoder": "dec_r41.pth", "styles": "[]"}   # any style, none named
    assert kinds["r31"].metadata == {"level": "relu3_1", "family": "vgg19n", "styles": "[]"}
    # the release's r31 encoder and decoder layouts are what the bundled pair holds
    for name, source in (("vgg_r31", ENCODER_WEIGHTS), ("dec_r31", "vgg19_normalised_r31_decoder")):
        tensors = weight_store.load_state_dict(source)[0]
        assert fmt.match(tensors) == 1.0 and fmt.convert(tensors).role == ("encoder" if "vgg" in name else "decoder")
    # the reference mode is written only when set, so the files written before it read back unchanged
    assert LinearTransform(256, 32).config() == {"arch": "lst_transform", "channels": 256, "matrix": 32}


def test_lst_release_networks_compute_what_the_release_computes(lst_files, cache):
    root, nets = lst_files
    encoder = normalised_vgg_encoder(str(root / "vgg_r41.pth"), "relu4_1")
    decoder = vgg_decoder("relu4_1", str(root / "dec_r41.pth"))
    x, = _images(4, (2, 3, 24, 32))
    feat = nets["vgg_r41"](x)
    assert (encoder(x)["relu4_1"] - feat).abs().max() < TOL and feat.abs().mean() > 0.1
    assert (decoder(feat) - nets["dec_r41"](feat)).abs().max() < TOL
    g = torch.Generator().manual_seed(5)
    for name, c in (("r41", 512), ("r31", 256)):
        transform = trained_network(str(root / f"{name}.pth"), "lst_transform")[0]
        cf, sf = torch.rand(2, c, 5, 6, generator=g), torch.rand(1, c, 7, 4, generator=g)
        theirs = nets[name](cf, sf.expand(2, -1, -1, -1))
        assert theirs.std() > 0.1 * cf.std()   # the target keeps the features' size
        diff = (transform(cf, sf) - theirs).abs().max()
        assert diff < TOL, (name, diff)


def test_lst_release_stylizes_as_its_test_script(lst_files, cache):
    """--model r41.pth finds vgg_r41.pth and dec_r41.pth beside it; r31.pth runs on the bundled pair (the release's
    vgg_r31 / dec_r31); both give TestArtistic.py's dec(matrix(vgg(content), vgg(style))).clamp(0, 1)."""
    root, nets = lst_files
    content, style = _images(6, (1, 3, 40, 32), (1, 3, 32, 48))
    for tag in ("r41", "r31"):
        vgg, dec, mul = nets[f"vgg_{tag}"], nets[f"dec_{tag}"], nets[tag]
        reference = dec(mul(vgg(content), vgg(style))).clamp(0, 1)
        assert 0.3 < ((reference > 0) & (reference < 1)).float().mean()
        method = build("lst", model=str(root / f"{tag}.pth"))
        method.context = 0
        diff = (method.stylize(content, method.encode_style(style)) - reference).abs().max()
        assert diff < TOL, (tag, diff)


def test_lst_release_module_without_its_pair_says_what_is_missing(lst_files, cache, tmp_path):
    root, _ = lst_files
    (tmp_path / "r41.pth").write_bytes((root / "r41.pth").read_bytes())
    with pytest.raises(BrushstreamError, match=r"r41.pth: was trained with the encoder vgg_r41.pth, which is not "
                                               r"beside it .*; pass --encoder"):
        build("lst", model=str(tmp_path / "r41.pth"))
    given = build("lst", model=str(tmp_path / "r41.pth"), encoder=str(root / "vgg_r41.pth"),
                  decoder=str(root / "dec_r41.pth"))
    assert given.decoder.family == "vgg19n" and given.encoder.depth == "relu4_1"
    # imported, the three files pair by their stems
    out = tmp_path / "imported"
    for name in ("r41", "vgg_r41", "dec_r41"):
        import_file(str(root / f"{name}.pth"), out_dir=out)
    method = build("lst", model=str(out / "r41.safetensors"))
    assert method.level == "relu4_1" and method.decoder.family == "vgg19n" and method.transform.bias


# -- bad files --------------------------------------------------------------------------------------------------------

def test_bad_release_files_are_refused_in_one_line(adain_files, lst_files, tmp_path, capsys):
    (adain_root, _, dec), (lst_root, nets) = adain_files, lst_files
    sd = dict(dec.state_dict())
    sd["5.weight"] = sd["5.weight"][:, :128]   # a wrong shape
    bad_decoder = tmp_path / "decoder.pth"
    torch.save(sd, bad_decoder)
    sd = dict(nets["r41"].state_dict())
    del sd["compress.bias"]   # Brushstream's own module has none: not the release's
    bad_model = tmp_path / "r41.pth"
    torch.save(sd, bad_model)
    cases = ((bad_decoder, "adain_release", r"ValueError: 5.weight is \(256, 128, 3, 3\), expected \(256, 256, 3, 3\)"),
             (bad_model, "lst_release", r"KeyError: 'missing compress.bias'"))
    for path, fmt, why in cases:
        with pytest.raises(BrushstreamError, match=rf"unknown layout .*closest known format: {fmt} \(9\d% explained; "
                                                   rf"{why}") as err:
            import_file(str(path), out_dir=tmp_path / "out")
        assert "\n" not in str(err.value) and str(path) in str(err.value)
        with pytest.raises(BrushstreamError, match=rf"does not fit --format {fmt}") as err:
            convert_file(path, fmt)
        assert "\n" not in str(err.value) and str(path) in str(err.value)
        assert cli_main(["weights", "import", str(path), "--format", fmt, "-o", str(tmp_path / "out")]) == 2
        message = capsys.readouterr().err
        assert message.count("\n") == 1 and str(path) in message
    # each layout explains none of the other's files
    adain, lst = formats()["adain_release"], formats()["lst_release"]
    assert lst.match(torch.load(adain_root / "decoder.pth", weights_only=True)) == 0.0
    assert adain.match(torch.load(lst_root / "dec_r41.pth", weights_only=True)) == 0.0
