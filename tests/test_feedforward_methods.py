"""Johnson, MSG-Net and MetaNet behind the one interface, loaded from files the training stack wrote."""
import json
import shutil

import pytest
import torch

from brushstream.core.cli import main as cli_main
from brushstream.core.errors import BrushstreamError
from brushstream.core.io.image import load_image
from brushstream.core.methods import build
from brushstream.core.nets.metanet import MIN_STAT_SCALE, STYLE_LAYERS, MetaNet, style_statistics
from brushstream.core.nets.msgnet import MSGNet
from brushstream.core.ops.resize import resize_long_side
from brushstream.core.train.catalogue import get_recipe
from brushstream.core.train.loop import fit

from .conftest import SHARED_DATA

STYLES = SHARED_DATA / "styles"
TWO = (str(STYLES / "starry_night.jpg"), str(STYLES / "the_great_wave.jpg"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small networks trained for a few steps (enough to differ from their initialisation)."""
    root = tmp_path_factory.mktemp("models")
    photos = root / "photos"
    photos.mkdir()
    for p in sorted((SHARED_DATA / "content").glob("*.jpg"))[:4]:
        shutil.copy(p, photos)
    common = dict(content_dir=str(photos), size=48, steps=6, batch=2, residual_blocks=1, style_size=96)
    specs = {"johnson": dict(style=TWO[:1], width=4), "msgnet": dict(style=TWO, width=4, brush_sizes=(96,)),
             "metanet": dict(style=TWO, width=4, hidden=4)}
    out = {}
    for name, spec in specs.items():
        out[name] = root / f"{name}.safetensors"
        fit(get_recipe(name)(**common, **spec), out[name], progress=False, loss_curve=False)
    return out


def _photo():
    torch.manual_seed(0)
    return torch.rand(1, 3, 40, 52)


def test_johnson_applies_its_one_trained_style(models):
    m = build("johnson", model=str(models["johnson"]))
    assert m.capabilities.fixed_styles == ("starry_night",)
    x = _photo()
    y = m.stylize(x, m.encode_style("starry_night"))
    assert y.shape == x.shape and not torch.allclose(y, x, atol=0.05)
    assert torch.equal(m.stylize(x, m.encode_style(0), strength=0.0), x)
    with pytest.raises(BrushstreamError, match="fixed styles"):
        m.encode_style(torch.rand(1, 3, 32, 32))
    with pytest.raises(BrushstreamError, match="no style 'udnie'"):
        m.encode_style("udnie")


def test_johnson_runs_onnx_and_eager_alike_and_auto_settles_without_extra_runs(models):
    pytest.importorskip("onnxruntime")
    x = _photo()
    eager = build("johnson", model=str(models["johnson"]), runtime="eager")
    reference = eager.stylize(x, eager.encode_style(0))
    onnx = build("johnson", model=str(models["johnson"]), runtime="onnx")
    assert (onnx.stylize(x, onnx.encode_style(0)) - reference).abs().max() < 1e-4
    assert onnx.runner.chosen == "onnx"
    auto = build("johnson", model=str(models["johnson"]))
    code, ran = auto.encode_style(0), []
    for _ in range(6):
        assert (auto.stylize(x, code) - reference).abs().max() < 1e-4
        ran.append(auto.runner.chosen)
    # Each call is one run whose output is used: a warm-up round, a timed round, then the faster backend only.
    assert ran[:4] == ["eager", "onnx", "eager", "onnx"] and ran[4] == ran[5] in ("eager", "onnx")
    assert auto.runner._picked[(tuple(x.shape), "cpu", torch.float32)] == ran[4]


def test_builders_return_fresh_networks_from_one_verified_file(models):
    a, b = (build("johnson", model=str(models["johnson"])) for _ in range(2))
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(BrushstreamError, match="holds a msgnet network, not johnson_transform"):
        build("johnson", model=str(models["msgnet"]))


def test_msgnet_selects_blends_and_takes_new_styles(models):
    m = build("msgnet", model=str(models["msgnet"]))
    assert m.capabilities.fixed_styles == ("starry_night", "the_great_wave")
    x = _photo()
    first, second = m.stylize(x, m.encode_style(0)), m.stylize(x, m.encode_style("the_great_wave"))
    assert not torch.allclose(first, second, atol=1e-3)
    assert torch.allclose(m.stylize(x, m.encode_style({0: 1.0, 1: 0.0})), first, atol=1e-5)
    half = m.stylize(x, m.encode_style([0, 1], [0.5, 0.5]))
    assert (half - first).abs().mean() > 1e-4 and (half - second).abs().mean() > 1e-4
    # a style image goes through the siamese branch: the learned Grams were taken the same way
    style = torch.rand(1, 3, 64, 64)
    code = m.encode_style(style)
    expected = m.net.style_statistics(resize_long_side(style, 512))
    assert all(torch.allclose(c, e) for c, e in zip(code.data, expected))


def test_msgnet_brush_size_changes_the_statistics_the_network_sees(models):
    fine = build("msgnet", model=str(models["msgnet"]), brush=2 / 3)
    coarse = build("msgnet", model=str(models["msgnet"]), brush=2.0)
    style = torch.rand(1, 3, 300, 300)
    assert fine.encode_style(style).data[0].shape == coarse.encode_style(style).data[0].shape
    assert not torch.allclose(fine.encode_style(style).data[0], coarse.encode_style(style).data[0])
    # learned styles: brush 1 is the Gram stored at 512 px, brush 512/448 lies between 384 and 512
    normal = build("msgnet", model=str(models["msgnet"]))
    g384, g512 = normal.grams1_1[:1], normal.grams1_2[:1]
    assert torch.allclose(normal.encode_style(0).data[0], g512)
    between = build("msgnet", model=str(models["msgnet"]), brush=512 / 448).encode_style(0).data[0]
    assert torch.allclose(between, 0.5 * (g384 + g512), atol=1e-6)
    with pytest.raises(BrushstreamError, match="brush"):
        build("msgnet", model=str(models["msgnet"]), brush=3)


def test_metanet_writes_a_new_network_per_style(models):
    m = build("metanet", model=str(models["metanet"]))
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64) * 0.3
    code_a, code_b = m.encode_style(a), m.encode_style(b)
    assert set(code_a.data) == {name for name, *_ in m.net.plan}
    assert not torch.allclose(code_a.data["res0a"][0], code_b.data["res0a"][0])
    x = _photo()
    ya, yb = m.stylize(x, code_a), m.stylize(x, code_b)
    assert ya.shape == x.shape and not torch.allclose(ya, yb, atol=1e-4)
    assert torch.equal(m.stylize(x, code_a), ya)   # a code is reusable


@torch.no_grad()
def test_metanet_runs_one_generated_network_per_image_and_standardises_over_its_training_styles(models):
    m = build("metanet", model=str(models["metanet"]))
    styles = [load_image(p, long_side=96).image for p in TWO]   # as the recipe loads them (style_size 96)
    stats = torch.cat([style_statistics(m.vgg(s, STYLE_LAYERS)) for s in styles])
    # The recipe centred and scaled the meta network's input on the styles it trained on.
    assert torch.allclose(m.net.stat_mean, stats.mean(0), atol=1e-2)        # (the file is float16)
    assert torch.allclose(m.net.stat_scale, stats.std(0).clamp_min(MIN_STAT_SCALE), rtol=1e-2, atol=1e-2)
    # A batch with one style per image (training) equals each image with its own network (inference).
    x = torch.rand(2, 3, 40, 48)
    together = m.net(x, stats)
    apart = torch.cat([m.net(x[i:i + 1], stats[i:i + 1]) for i in range(2)])
    assert torch.allclose(together, apart, atol=1e-5) and not torch.allclose(apart[0], m.net(x[:1], stats[1:]))


def test_cli_stylizes_with_a_trained_model_and_trained_style_names(models, tmp_path, capsys):
    photo = SHARED_DATA / "content_eval" / "skimage_chelsea.jpg"
    run = lambda *a: cli_main([str(x) for x in a])   # the CLI's own main, in-process  # noqa: E731
    assert run("stylize", photo, "--method", "johnson", "--model", models["johnson"], "--size", 64,
               "-o", tmp_path / "j.png") == 0
    assert run("stylize", photo, "--method", "msgnet", "--model", models["msgnet"], "--style", "the_great_wave",
               "--brush", 1.5, "--size", 64, "-o", tmp_path / "m.png") == 0
    capsys.readouterr()
    assert run("stylize", photo, "--method", "johnson", "--model", models["johnson"], "--style", "nope",
               "-o", tmp_path / "x.png") == 2
    assert "no style 'nope'" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    assert run("stylize", photo, "--method", "metanet", "--model", models["metanet"], "--style", STYLES / "udnie.jpg",
               "--size", 64, "-o", tmp_path / "t.png") == 0
    assert all((tmp_path / f).exists() for f in ("j.png", "m.png", "t.png"))
    meta = json.loads((models["metanet"].parent / "metanet.manifest.json").read_text())
    assert meta["method"] == "metanet"


def test_comfyui_nodes_run_trained_networks_with_typed_styles(models):
    from brushstream.nodes.stylize import encode_style, load_model, stylize_images

    image = torch.rand(2, 40, 52, 3)
    common = dict(strength=1.0, preserve_color=False, precision="fp32")
    johnson = load_model("johnson", {}, source=str(models["johnson"]))      # the weights_source input
    out = stylize_images(johnson, encode_style(johnson, [], trained_style="starry_night"), image, **common)
    assert out.shape == image.shape
    msg = load_model("msgnet", {"model": str(models["msgnet"]), "brush": 1.0})

    def run(trained="", style=None):
        return stylize_images(msg, encode_style(msg, [style], trained_style=trained), image, **common)
    by_name, by_index, first = run("the_great_wave"), run("1"), run("0")
    assert torch.equal(by_name, by_index) and not torch.allclose(by_name, first)
    assert not torch.allclose(run("", torch.rand(1, 64, 64, 3)), first)     # a style image instead
    blend = run("the_great_wave:0.5, 0:0.5")
    assert not torch.allclose(blend, first) and not torch.allclose(blend, by_name)


def test_msgnet_matches_the_style_at_both_scales(models):
    m = build("msgnet", model=str(models["msgnet"]))
    x = _photo()
    (g1, g2), (h1, h2) = m.encode_style(0).data, m.encode_style(1).data
    base = m.net(x, (g1, g2))
    assert not torch.allclose(m.net(x, (h1, g2)), base, atol=1e-4)   # the first CoMatch sees its style's Gram
    assert not torch.allclose(m.net(x, (g1, h2)), base, atol=1e-4)   # and so does the second


def _effective_rank(features: torch.Tensor) -> float:
    """(sum of singular values)^2 / sum of their squares, over the channels of one feature map."""
    f = features.reshape(features.shape[1], -1)
    s = torch.linalg.svdvals(f - f.mean(1, keepdim=True))
    return float(s.sum() ** 2 / s.pow(2).sum())


@torch.no_grad()
def test_msgnet_comatch_passes_the_content_on_in_many_channels_mixed_per_style():
    """With the paper's raw Gram and U(0, 0.02) weight, W G is nearly rank one (the Gram's mean term), so CoMatch
    hands the trunk one map in every channel and training learns to ignore the style. The defaults must keep
    the content's channels apart and mix them differently for each style."""
    content = resize_long_side(load_image(SHARED_DATA / "content_eval" / "hays80_beach.jpg").image, 96)
    styles = [resize_long_side(load_image(p).image, 128) for p in TWO]

    def comatch_outputs(**config):
        torch.manual_seed(0)
        net = MSGNet(width=8, residual_blocks=1, **config)
        x = net.down1(net.stem(content))
        return [net.match1(x, net.style_statistics(s)[0]) for s in styles]

    paper = comatch_outputs(statistic="gram", init="paper")
    default = comatch_outputs()
    assert _effective_rank(paper[0]) < 1.5 < 3 < _effective_rank(default[0])
    change = float((default[1] - default[0]).norm() / default[0].norm())
    assert change > 0.2


@torch.no_grad()
def test_metanet_output_saturates_instead_of_exploding_for_a_far_off_style():
    """Johnson's scaled tanh: even statistics far outside the training styles give pixels within [-0.09, 1.09]."""
    torch.manual_seed(0)
    net = MetaNet(width=4, residual_blocks=1, hidden=4)
    net.standardise_over(torch.rand(3, 1920))
    y = net(torch.rand(1, 3, 32, 32), torch.full((1, 1920), 1e3))
    assert y.min() >= 0.5 - 0.589 and y.max() <= 0.5 + 0.589 and y.std() > 0.01


@torch.no_grad()
def test_msgnet_comatch_is_the_papers_transposed_product():
    """Eq. 6: y = (W G)^T x. With a W that is not symmetric, (W G) x is a different layer."""
    from brushstream.core.nets.msgnet import CoMatch
    torch.manual_seed(0)
    layer = CoMatch(4)
    layer.weight.copy_(torch.randn(1, 4, 4))
    feats = torch.randn(1, 4, 6)
    gram = feats @ feats.mT / 6
    x = torch.randn(2, 4, 3, 5)
    expected = torch.einsum("ij,bjp->bip", (layer.weight[0] @ gram[0]).T, x.reshape(2, 4, 15)).reshape(2, 4, 3, 5)
    assert torch.allclose(layer(x, gram), expected, atol=1e-5)


@torch.no_grad()
def test_metanet_feeds_its_meta_network_standardised_statistics():
    """The trunk sees (stats - mean) / scale of the training styles: the mean style is a zero input."""
    import copy
    torch.manual_seed(0)
    net = MetaNet(width=4, residual_blocks=1, hidden=8)
    stats = torch.rand(3, 1920) * torch.logspace(0, 3, 1920)      # features four orders of magnitude apart
    net.standardise_over(stats)
    raw = copy.deepcopy(net)
    raw.stat_mean.zero_()
    raw.stat_scale.fill_(1.0)
    standardised = (stats - stats.mean(0)) / stats.std(0).clamp_min(MIN_STAT_SCALE)
    for name, (weight, bias) in net.generate(stats).items():
        expected_weight, expected_bias = raw.generate(standardised)[name]
        assert torch.allclose(weight, expected_weight, atol=1e-5) and torch.allclose(bias, expected_bias, atol=1e-5)


def test_metanet_measures_a_style_at_the_size_its_meta_network_was_trained_on(models):
    """VGG statistics depend on scale: a style given at any size is read at the recipe's --style-size (96 here)."""
    m = build("metanet", model=str(models["metanet"]))
    seen = []
    m.vgg.register_forward_pre_hook(lambda _module, args: seen.append(tuple(args[0].shape[-2:])))
    style = load_image(STYLES / "udnie.jpg").image
    large = m.encode_style(resize_long_side(style, 400))
    small = m.encode_style(resize_long_side(style, 96))
    assert [max(s) for s in seen] == [96, 96]
    assert torch.allclose(large.data["res0a"][0], small.data["res0a"][0], atol=2e-2)
