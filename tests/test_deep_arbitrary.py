"""Issue 9's deeper arbitrary style: the VGG16 encoder with its Caffe convention folded in, the decoders that mirror
it, AdaIN and WCT at relu4_1/relu5_1, the AdaIN decoder recipe and the working-size option."""
import json

import pytest
import torch
from safetensors.torch import save_file

from brushstream.core.errors import BrushstreamError
from brushstream.core.hub.weights import load_state_dict
from brushstream.core.methods import build
from brushstream.core.nets.pretrained import vgg16_encoder, vgg16_features
from brushstream.core.nets.vgg_decoder import VGGDecoder
from brushstream.core.ops.resize import crop_box, pad_with_context, resize_long_side, resize_to
from brushstream.core.ops.stats import mean_std
from brushstream.core.ops.wct import _centred, _covariance
from brushstream.core.train.adain_recipe import STYLE_TAPS, AdaINRecipe
from brushstream.core.train.data import UNSEEN_STYLES
from brushstream.core.train.decoder_recipe import copy_shared_layers
from brushstream.core.train.loop import fit

from .conftest import SHARED_DATA

STYLE = SHARED_DATA / "styles" / "starry_night.jpg"


def _photo(path, side):
    from brushstream.core.io.image import load_image
    return resize_long_side(load_image(path).image, side)


@pytest.fixture(scope="module")
def content():
    return _photo(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg", 96)


@pytest.fixture(scope="module")
def style():
    return _photo(STYLE, 96)


def _decoder_file(folder, level, width=1.0):
    """An untrained decoder file (the transforms are tested on features, not on how well it paints)."""
    torch.manual_seed(0)
    dec = VGGDecoder(level, width)
    with torch.no_grad():   # VGG16 features run to hundreds: keep the untrained image near [0, 1]
        getattr(dec, dec.plan[0][0]).weight.mul_(1 / 255)
    path = folder / f"dec_{level}.safetensors"
    save_file({k: v.contiguous() for k, v in dec.state_dict().items()}, str(path),
              metadata={"arch": "vgg_decoder", "level": level, "width": str(width)})
    return str(path)


def test_the_folded_caffe_convention_gives_the_imagenet_network_s_features_exactly():
    x = torch.rand(2, 3, 40, 56)
    taps = ("relu1_1", "relu3_1", "relu4_1", "relu5_1")
    ours, reference = vgg16_encoder("relu5_1")(x, taps), vgg16_features()(x, taps)
    for t in taps:   # same weights, same maths; only the order of float operations differs
        torch.testing.assert_close(ours[t], reference[t], rtol=1e-4, atol=1e-2)
    assert ours["relu4_1"].shape == (2, 512, 5, 7)
    with pytest.raises(ValueError, match="not in this encoder"):
        vgg16_encoder("relu4_1")(x, ("relu5_1",))


def test_decoders_mirror_the_encoder_and_start_from_the_shallower_pretrained_one(tmp_path):
    for level, stride in (("relu5_1", 16), ("relu4_1", 8), ("relu3_1", 4)):
        channels = 512 if level != "relu3_1" else 256
        assert VGGDecoder(level)(torch.rand(1, channels, 3, 4)).shape == (1, 3, 3 * stride, 4 * stride)
    slim = VGGDecoder("relu4_1", width=0.25)
    assert slim(torch.rand(1, 512, 2, 2)).shape == (1, 3, 16, 16)
    assert sum(p.numel() for p in slim.parameters()) < sum(p.numel() for p in VGGDecoder("relu4_1").parameters()) / 6
    deep = VGGDecoder("relu4_1")
    copied = copy_shared_layers(deep, "vgg19_normalised_r31_decoder")
    assert sorted({k.split(".")[0] for k in copied}) == ["conv10", "conv11", "conv7", "conv8", "conv9"]
    r31 = load_state_dict("vgg19_normalised_r31_decoder")[0]
    assert torch.equal(deep.conv7.weight, r31["conv7.weight"])


def test_adain_at_relu4_1_gives_the_content_features_the_style_statistics(tmp_path, content, style):
    adain = build("adain", level="relu4_1", decoder=_decoder_file(tmp_path, "relu4_1"))
    assert adain.stride == 8
    code = adain.encode_style([style])
    fc = vgg16_encoder("relu4_1")(content)["relu4_1"]
    t = adain.transfer(fc, code)
    s_mean, s_std = mean_std(vgg16_encoder("relu4_1")(style)["relu4_1"])
    t_mean, t_std = mean_std(t)
    # A channel the photo never fires (a dead ReLU on 12x12 features) has no spread to rescale: eq. 8 leaves it flat.
    live = mean_std(fc)[1].flatten() > 1e-2
    assert live.float().mean() > 0.9
    torch.testing.assert_close(t_mean.flatten()[live], s_mean.flatten()[live], rtol=1e-3, atol=1e-2)
    torch.testing.assert_close(t_std.flatten()[live], s_std.flatten()[live], rtol=1e-3, atol=1e-2)
    out = adain.stylize(content[..., :60, :93], code)   # not a multiple of 8: padded and cropped back
    assert out.shape == (1, 3, 60, 93)


def test_five_level_wct_colours_relu5_1_with_the_style_covariance(tmp_path, content, style):
    decoders = {lv: _decoder_file(tmp_path, lv) for lv in ("relu5_1", "relu4_1")}
    wct = build("wct", levels=("relu5_1", "relu4_1", "relu3_1", "relu2_1", "relu1_1"), decoders=decoders)
    assert wct.levels[0] == "relu5_1" and wct.stride == 16 and set(wct.encoders) == {"vgg16", "vgg19n"}
    # relu5_1 has 512 channels: the maps need more positions than that for a full-rank covariance (32x21 here).
    big_content = _photo(SHARED_DATA / "content_eval" / "skimage_chelsea.jpg", 512)
    big_style = _photo(STYLE, 512)
    code = wct.encode_style([big_style])
    from brushstream.core.ops.wct import whiten_colour
    fc = wct._encode(big_content, "relu5_1")
    out = whiten_colour(fc, code.data[0]["relu5_1"])
    fs, _ = _centred(wct._encode(big_style, "relu5_1"))
    fo, _ = _centred(out)
    target = _covariance(fs)
    before = (_covariance(_centred(fc)[0]) - target).norm() / target.norm()
    # Within the eigenvalue floor and the few channels the photo never fires (which whitening cannot fill).
    assert (_covariance(fo) - target).norm() / target.norm() < 0.05 < 0.5 < before
    assert wct.stylize(big_content[..., :200, :200], code).shape == (1, 3, 200, 200)


def test_working_size_runs_the_networks_small_and_returns_the_input_size(content, style):
    full, small = build("adain"), build("adain", work_size=48)
    code = full.encode_style([style])
    out = small.stylize(content, code)
    assert out.shape == content.shape
    # The same as stylizing the downscaled photo and resizing the result up.
    expected = resize_to(full.stylize(resize_long_side(content, 48), code), content.shape[-2:]).clamp(0, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    assert (out - full.stylize(content, code)).abs().mean() > 1e-3
    # A working size larger than the photo never enlarges it.
    torch.testing.assert_close(build("adain", work_size=4096).stylize(content, code), full.stylize(content, code))


def test_adain_decoder_training_lowers_the_paper_s_loss_and_keeps_held_out_styles_out(photos, tmp_path):
    recipe = AdaINRecipe(content_dir=str(photos), size=32, batch=2, steps=30, lr=1e-3, width=0.25,
                         start_from="none", style_bank=2, style_size=64, style_dir=str(SHARED_DATA / "styles"))
    result = fit(recipe, tmp_path / "adain.safetensors", progress=False)
    totals = [h["total"] for h in result.history]
    assert sum(totals[-5:]) < 0.5 * sum(totals[:5])
    meta = load_state_dict(tmp_path / "adain.safetensors")[1]
    trained, held = json.loads(meta["styles"]), json.loads(meta["held_out"])
    assert set(held) == set(UNSEEN_STYLES) and not set(held) & set(trained) and "starry_night" in trained
    assert set(json.loads(meta["tap_scales"])) == set(STYLE_TAPS)
    # The file rebuilds as AdaIN's relu4_1 decoder, width from its own metadata.
    adain = build("adain", level="relu4_1", decoder=str(tmp_path / "adain.safetensors"))
    assert adain.decoder.width == 0.25


def test_a_relu3_1_decoder_trains_on_the_bundled_vgg19_from_the_reconstruction_decoder(photos, tmp_path):
    recipe = AdaINRecipe(content_dir=str(photos), level="relu3_1", size=32, batch=2, steps=30, lr=1e-3,
                         style=(str(STYLE),), style_bank=2, style_size=64)
    result = fit(recipe, tmp_path / "adain31.safetensors", progress=False)
    styles = [h["style"] for h in result.history]
    # It starts from the reconstruction decoder (low content loss, a style far off) and learns the style.
    assert result.history[0]["content"] < 0.2 * result.history[0]["style"]
    assert sum(styles[-5:]) < 0.5 * sum(styles[:5])
    meta = load_state_dict(tmp_path / "adain31.safetensors")[1]
    assert meta["level"] == "relu3_1" and meta["encoder"] == "vgg19_normalised_r31_encoder"
    # Content in the normalised VGG19 (its own unit), style on VGG16's four taps as at relu4_1.
    assert meta["loss_network"] == "vgg16_imagenet_caffe" and set(json.loads(meta["tap_scales"])) == set(STYLE_TAPS)
    assert recipe.unit == 1.0 and recipe.content_net is not recipe.loss_net
    adain = build("adain", level="relu3_1", decoder=str(tmp_path / "adain31.safetensors"))
    assert adain.decoder.level == "relu3_1"


def test_the_relu3_1_fast_path_pairs_a_student_of_the_vgg19_with_a_slim_decoder_pruned_from_the_default(
        photos, tmp_path, content, style):
    from brushstream.core.nets.student_encoder import StudentEncoder
    from brushstream.core.train.distill_recipe import DistillRecipe
    student = tmp_path / "student19.safetensors"
    result = fit(DistillRecipe(content_dir=str(photos), teacher="vgg19n", width=0.25, size=32, batch=2, steps=20,
                               lr=1e-3), student, progress=False)
    embedding = [h["embedding"] for h in result.history]
    assert sum(embedding[-5:]) < sum(embedding[:5])
    meta = load_state_dict(student)[1]
    assert meta["teacher"] == "vgg19_normalised_r31_encoder" and meta["decoder"] == "vgg19_normalised_r31_decoder"
    common = dict(content_dir=str(photos), level="relu3_1", encoder=str(student), width=0.25, size=32, batch=2,
                  lr=1e-3, style=(str(STYLE),), style_bank=2, style_size=64)
    # The slim decoder starts from the default relu3_1 decoder pruned onto the student's features: far below random.
    first = {}
    for start in ("adain_vgg19n_r31_decoder", "none"):
        recipe = AdaINRecipe(**common, start_from=start, steps=1)
        first[start] = fit(recipe, tmp_path / f"{start}.safetensors", progress=False).history[0]["total"]
    assert first["adain_vgg19n_r31_decoder"] < 0.5 * first["none"], first
    fit(AdaINRecipe(**common, start_from="adain_vgg19n_r31_decoder", steps=3), tmp_path / "fast31.safetensors",
        progress=False)
    fast = build("adain", level="fast", decoder=str(tmp_path / "fast31.safetensors"))
    # The decoder's file names its level and student, so the fast level runs the pair at relu3_1 (stride 4).
    assert fast.level == "relu3_1" and fast.stride == 4 and fast.decoder.width == 0.25
    assert isinstance(fast.encoder, StudentEncoder) and fast.encoder.teacher == "vgg19n"
    assert fast.stylize(content, fast.encode_style([style])).shape == content.shape
    vgg16_student = tmp_path / "student16.safetensors"
    fit(DistillRecipe(content_dir=str(photos), width=0.125, size=32, batch=2, steps=1, start_from="none"),
        vgg16_student, progress=False)
    with pytest.raises(BrushstreamError, match="a student of vgg16 has no relu3_1"):
        AdaINRecipe(**{**common, "encoder": str(vgg16_student)}, steps=1).setup(torch.device("cpu"))


def test_the_style_bank_draws_the_statistics_of_real_augmented_crops(photos):
    recipe = AdaINRecipe(content_dir=str(photos), size=32, batch=2, style_bank=3, style_size=64,
                         style=(str(STYLE),))
    recipe.setup(torch.device("cpu"))
    targets = recipe.style_targets([0] * 12, torch.Generator().manual_seed(1))
    bank = {t: (m[0], sd[0]) for t, (m, sd) in recipe.bank.items()}   # style 0's crops
    for t in STYLE_TAPS:
        assert targets[t][0].shape[0] == 12
        # each drawn row is one of the bank's crops, and the draws use more than one of them
        rows = [next(k for k in range(3) if torch.equal(targets[t][0][i], bank[t][0][k])) for i in range(12)]
        assert len(set(rows)) > 1
    assert not torch.equal(bank["relu1_1"][0][0], bank["relu1_1"][0][1])
    # Each tap is in its own unit, so the four layers weigh alike in the loss (raw VGG16 runs from ~20 to ~250).
    levels = [float(bank[t][0].mean()) for t in STYLE_TAPS]
    assert max(levels) / min(levels) < 5 and all(0.1 < v < 10 for v in levels)


def test_lst_at_relu4_1_trains_and_the_method_takes_the_level_from_its_file(photos, tmp_path, content, style):
    from brushstream.core.nets.lst import LinearTransform
    from brushstream.core.train.lst_recipe import FEATURE_SCALE, LSTRecipe
    # VGG16's relu4_1 runs to hundreds: a fresh transform must keep the target features on their scale.
    fc, fs = (vgg16_encoder()(x)["relu4_1"] for x in (content, style))
    with torch.no_grad():
        fresh = LinearTransform(512, 32, FEATURE_SCALE["relu4_1"]).start_near_identity()(fc, fs)
    assert fresh.std() < 2 * fc.std()
    decoder = _decoder_file(tmp_path, "relu4_1", width=0.25)
    recipe = LSTRecipe(content_dir=str(photos), level="relu4_1", decoder=decoder, size=32, batch=2, steps=20,
                       lr=3e-3, matrix=8, style=(str(STYLE),), style_size=64)
    result = fit(recipe, tmp_path / "lst41.safetensors", progress=False)
    totals = [h["total"] for h in result.history]
    assert sum(totals[-4:]) < sum(totals[:4])
    lst = build("lst", model=str(tmp_path / "lst41.safetensors"))
    assert lst.level == "relu4_1" and lst.stride == 8 and lst.transform.channels == 512
    assert lst.decoder.width == 0.25   # the decoder named in the file's metadata
    assert lst.stylize(content, lst.encode_style([style])).shape == content.shape


def test_a_distilled_student_learns_the_teacher_s_features_and_serves_adain(photos, tmp_path, content, style):
    from brushstream.core.nets.student_encoder import StudentEncoder
    from brushstream.core.train.distill_recipe import DistillRecipe
    decoder = _decoder_file(tmp_path, "relu4_1", width=0.25)
    recipe = DistillRecipe(content_dir=str(photos), decoder=decoder, width=0.125, size=32, batch=2, steps=30,
                           lr=3e-3, start_from="none")
    result = fit(recipe, tmp_path / "student.safetensors", progress=False)
    embedding = [h["embedding"] for h in result.history]
    assert sum(embedding[-5:]) < 0.9 * sum(embedding[:5])
    adain = build("adain", level="relu4_1", encoder=str(tmp_path / "student.safetensors"), decoder=decoder)
    assert isinstance(adain.encoder, StudentEncoder) and adain.encoder.width == 0.125
    code = adain.encode_style([style])
    assert adain.stylize(content, code).shape == content.shape
    with pytest.raises(Exception, match="a student of vgg16 cannot stand in at relu3_1"):
        build("adain", level="relu3_1", encoder=str(tmp_path / "student.safetensors"))


def test_the_fast_path_decoder_learns_to_read_the_student_and_names_it(photos, tmp_path, content, style):
    import shutil

    import torch.nn.functional as F

    from brushstream.core.nets.student_encoder import StudentEncoder
    from brushstream.core.ops.adain import adain
    from brushstream.core.train.adain_recipe import INPUT, LEVEL
    from brushstream.core.train.distill_recipe import DistillRecipe
    from brushstream.core.train.perceptual import pick_styles
    teacher_decoder = _decoder_file(tmp_path, "relu4_1", width=0.125)
    student = tmp_path / "student.safetensors"
    fit(DistillRecipe(content_dir=str(photos), decoder=teacher_decoder, width=0.125, size=32, batch=2, steps=4,
                      lr=3e-3, start_from="none"), student, progress=False)
    recipe = AdaINRecipe(content_dir=str(photos), encoder=str(student), width=0.125, start_from="none", size=32,
                         batch=2, steps=30, lr=1e-3, style=(str(STYLE),), style_size=64, style_bank=2)
    # The AdaIN target is made from the student's features, content and style alike, as at inference.
    recipe.setup(torch.device("cpu"))
    net = recipe.student
    unit = recipe.scale[LEVEL]
    for t in (INPUT, LEVEL):
        assert recipe.bank[t][0].shape == recipe.bank[LEVEL][0].shape
    assert not torch.allclose(recipe.bank[INPUT][1], recipe.bank[LEVEL][1])
    decoder = recipe.build_model()
    batch = torch.rand(2, 3, 32, 32)
    terms = recipe.losses(decoder, batch, 0, torch.Generator().manual_seed(5))
    rng = torch.Generator().manual_seed(5)
    targets = recipe.style_targets(pick_styles(rng, 1, 2, 2, per_image=True), rng)
    with torch.no_grad():
        t = adain(net(batch)[LEVEL], targets[INPUT][0] * unit, targets[INPUT][1] * unit)
        expected = F.mse_loss(recipe.loss_net(decoder(t), (LEVEL,))[LEVEL] / unit, t / unit)
    torch.testing.assert_close(terms["content"].detach(), expected)
    # It trains, and the file names its student so the method pairs them by itself.
    result = fit(recipe, tmp_path / "fast.safetensors", progress=False)
    totals = [h["total"] for h in result.history]
    assert sum(totals[-5:]) < sum(totals[:5])
    fast = build("adain", level="relu4_1", decoder=str(tmp_path / "fast.safetensors"))
    assert isinstance(fast.encoder, StudentEncoder) and fast.decoder.width == 0.125
    assert fast.stylize(content, fast.encode_style([style])).shape == content.shape
    apart = tmp_path / "apart"
    apart.mkdir()
    shutil.copy(tmp_path / "fast.safetensors", apart)
    with pytest.raises(Exception, match="student encoder student.safetensors, which is not beside it"):
        build("adain", level="relu4_1", decoder=str(apart / "fast.safetensors"))
    shutil.copy(student, apart)
    assert isinstance(build("adain", level="relu4_1", decoder=str(apart / "fast.safetensors")).encoder,
                      StudentEncoder)


@pytest.mark.parametrize("decoder, level, widths", [("auto", "relu3_1", (0.375, 0.5)),
                                                   ("adain_student_r41_decoder_w025", "relu4_1", (0.25, 0.25))])
def test_the_fast_level_runs_a_bundled_student_pair_and_moves_the_photo_toward_the_style(content, style, decoder, level,
                                                                                          widths):
    from brushstream.core.nets.pretrained import level_encoders
    from brushstream.core.nets.student_encoder import StudentEncoder
    fast = build("adain", level="fast", decoder=decoder)
    # The bundled pairs: the decoder's file names its level and student, and neither needs the 58 MB VGG16 Hub file.
    assert isinstance(fast.encoder, StudentEncoder) and (fast.encoder.width, fast.decoder.width) == widths
    assert fast.level == level
    out = fast.stylize(content, fast.encode_style([style]))
    assert out.shape == content.shape
    # Judged by the bundled VGG19 at relu3_1 (the relu3_1 pair's teacher, not its student): the output's channel
    # statistics are nearer the style's than the photo's are, and its features still nearer the photo's than the
    # style's.
    judge = next(iter(level_encoders(("relu3_1",)).values()))
    with torch.no_grad():
        f = {k: judge(v, ("relu3_1",))["relu3_1"] for k, v in {"out": out, "photo": content, "style": style}.items()}
    stats = {k: torch.cat(mean_std(v)) for k, v in f.items()}
    assert (stats["out"] - stats["style"]).norm() < 0.6 * (stats["photo"] - stats["style"]).norm()
    assert (f["out"] - f["photo"]).norm() < (torch.nn.functional.interpolate(f["style"], f["photo"].shape[-2:])
                                             - f["photo"]).norm()


@pytest.mark.parametrize("decoder", ["auto", "adain_student_r41_decoder_w025"])
def test_the_fast_path_folds_its_embedding_and_adain_into_the_decoder_exactly(content, style, decoder):
    """The student pair skips its embedded feature map (ops/adain_fold.py): same output as embedding, AdaIN and
    decoder run in turn, for a blend of two styles at a strength below 1 on a batch of two; a mask keeps the plain
    path."""
    fast = build("adain", level="fast", decoder=decoder)
    code = fast.encode_style([style, content.flip(-1)], weights=[0.7, 0.3])
    batch = torch.cat([content, content.flip(-2)])
    with torch.no_grad():
        plain = fast.decoder(fast.transfer(fast.encoder(batch, (fast.level,))[fast.level], code, 0.6))
        folded = fast._stylize(content=batch, code=code, strength=0.6, mask=None, state=None)
        mask = torch.zeros(2, 1, *batch.shape[-2:])
        mask[..., : batch.shape[-1] // 2] = 1
        two = fast.encode_style([style, content.flip(-1)])
        masked = fast.stylize(batch, two, mask=mask)
        padded, box = pad_with_context(batch, fast.stride, fast.context)   # the picture's surroundings as context
        level_mask = pad_with_context(mask, fast.stride, fast.context)[0]
        reference = crop_box(fast.decoder(fast.transfer(fast.encoder(padded, (fast.level,))[fast.level], two, 1.0,
                                                        level_mask)), box)
    torch.testing.assert_close(folded, plain, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(masked, reference.clamp(0, 1), atol=1e-4, rtol=1e-4)


def test_palette_moves_the_result_toward_the_style_s_colours(content, style):
    """--palette, an option of every arbitrary-style method that works at a size: the result's colour mean and
    covariance move toward the style image's, in proportion, and the default leaves the method's own colours."""
    from brushstream.core.methods import get
    from brushstream.core.ops.colour import palette_stats
    assert all("palette" in {o.name for o in get(m).options} for m in ("adain", "wct", "lst"))
    target = palette_stats([style], (1.0,))

    def colour_gap(palette):
        model = build("adain", level="fast", palette=palette)
        out = palette_stats([model.stylize(content, model.encode_style([style]))], (1.0,))
        return float((out.mean - target.mean).norm() + (out.cov - target.cov).norm())
    none, half, full = colour_gap(0.0), colour_gap(0.5), colour_gap(1.0)
    assert full < 0.3 * none and full < half < none


def test_imitation_pulls_the_fast_pair_toward_the_full_pair_s_output(photos, tmp_path):
    """--imitate: the term compares the fast pair's output with the full pair's for the same photo and style crops.
    A student that is the VGG19 (a full-width exact prune) with the imitated decoder itself scores ~0; a random
    decoder does not; and without --imitate there is no such term."""
    from brushstream.core.io.image import fixed_crops
    from brushstream.core.nets.pretrained import normalised_vgg_encoder
    from brushstream.core.nets.student_encoder import StudentEncoder, start_from_teacher
    from brushstream.core.nets.vgg_normalised import NormalisedVGGEncoder
    student = StudentEncoder(1.0, teacher="vgg19n")
    start_from_teacher(student, normalised_vgg_encoder(), fixed_crops(SHARED_DATA / "content", 48, 24))
    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, tmp_path / "exact.safetensors",
              metadata={"arch": "student_encoder", "config": json.dumps(student.config())})
    batch = fixed_crops(SHARED_DATA / "content_eval", 48, 2)
    common = dict(content_dir=str(photos), level="relu3_1", encoder=str(tmp_path / "exact.safetensors"), size=48,
                  batch=2, style=(str(STYLE),), style_bank=2, style_size=96)
    terms, full = {}, "adain_vgg19n_r31_decoder"
    for start, imitate in ((full, full), ("none", full), (full, "none")):
        recipe = AdaINRecipe(**common, start_from=start, imitate=imitate, imitation_weight=2.0)
        recipe.setup(torch.device("cpu"))
        # At the recipe's own level the imitated pair reads the VGG19 the recipe already holds (no second copy).
        assert imitate == "none" or recipe.imitated_encoder is recipe.content_net
        with torch.no_grad():
            terms[start, imitate] = recipe.losses(recipe.build_model(), batch, 0, torch.Generator().manual_seed(0))
    same, random = terms[full, full], terms["none", full]
    assert float(same["imitation"]) < 0.01 * float(random["imitation"]), (same, random)
    unweighted = AdaINRecipe(**common, start_from="none", imitate=full)   # --imitation-weight scales the term
    unweighted.setup(torch.device("cpu"))
    with torch.no_grad():
        once = unweighted.losses(unweighted.build_model(), batch, 0, torch.Generator().manual_seed(0))["imitation"]
    torch.testing.assert_close(random["imitation"], 2 * once)
    assert "imitation" not in terms[full, "none"]
    torch.testing.assert_close(same["total"], same["content"] + same["style"] + same["imitation"])
    with pytest.raises(BrushstreamError, match="give --encoder STUDENT"):
        AdaINRecipe(content_dir=str(photos), level="relu3_1", imitate="adain_vgg19n_r31_decoder", style=(str(STYLE),),
                    style_bank=1, style_size=64).setup(torch.device("cpu"))
    # Across levels: a relu4_1 fast pair imitating the relu3_1 default pair takes that pair's encoder and statistics.
    vgg16_student = StudentEncoder(0.125)
    save_file({k: v.contiguous() for k, v in vgg16_student.state_dict().items()}, tmp_path / "s16.safetensors",
              metadata={"arch": "student_encoder", "config": json.dumps(vgg16_student.config())})
    recipe = AdaINRecipe(**{**common, "level": "relu4_1", "encoder": str(tmp_path / "s16.safetensors")}, width=0.125,
                         start_from="none", imitate=full)
    recipe.setup(torch.device("cpu"))
    assert recipe.imitated_level == "relu3_1" and recipe.imitated.level == "relu3_1"
    assert isinstance(recipe.imitated_encoder, NormalisedVGGEncoder) and recipe.bank["full"][0].shape[-3] == 256
    with torch.no_grad():
        assert float(recipe.losses(recipe.build_model(), batch, 0, torch.Generator().manual_seed(0))["imitation"]) > 0


def test_lst_trains_at_relu4_1_through_the_style_trained_decoder_unless_told_otherwise():
    from brushstream.core.train.lst_recipe import LSTRecipe
    assert LSTRecipe(level="relu4_1").decoder_name() == "adain_vgg16_r41_decoder"
    assert LSTRecipe(level="relu3_1").decoder_name() == "vgg19_normalised_r31_decoder"
    assert LSTRecipe(level="relu4_1", decoder="vgg16_r41_decoder").decoder_name() == "vgg16_r41_decoder"


def test_train_help_says_whose_choice_an_empty_default_is_without_printing_it():
    import argparse

    from brushstream.core.train.command import _add_recipe_flags
    from brushstream.core.train.lst_recipe import LSTRecipe
    parser = argparse.ArgumentParser()
    _add_recipe_flags(parser, LSTRecipe)
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["decoder"].endswith("(project's choice; paper: the level's reconstruction decoder)")
    assert "(default 0.001, " in helps["lr"]
