"""The fast path's pruned starts (core/nets/prune.py): a slim network refitted layer by layer to a wide trained one
starts near it, where a random start or kept rows without the refit do not."""
import pytest
import torch

from brushstream.core.io.image import fixed_crops
from brushstream.core.nets.pretrained import normalised_vgg_encoder, vgg16_encoder, vgg_decoder
from brushstream.core.nets.prune import fit_slim_conv
from brushstream.core.nets.student_encoder import TAPS, StudentEncoder, start_from_teacher
from brushstream.core.nets.vgg_decoder import VGGDecoder

from .conftest import SHARED_DATA


@pytest.fixture(scope="module")
def crops():
    return fixed_crops(SHARED_DATA / "content", 48, 24)


@pytest.fixture(scope="module")
def held_out():
    return fixed_crops(SHARED_DATA / "content_eval", 48, 6)


def _relative_error(teacher, student, images, tap):
    with torch.no_grad():
        a, b = teacher(images, (tap,))[tap], student(images, (tap,))[tap]
    return float((a - b).pow(2).mean() / a.pow(2).mean())


def test_a_least_squares_refit_recovers_a_convolution_exactly():
    torch.manual_seed(0)
    wide, slim = torch.nn.Conv2d(6, 5, 3, padding=1), torch.nn.Conv2d(6, 5, 3, padding=1)
    x = torch.randn(4, 6, 12, 12)
    keep, wide_out, slim_out = fit_slim_conv(wide, slim, x, x, ridge=0)
    assert keep.tolist() == list(range(5))
    torch.testing.assert_close(slim.weight, wide.weight, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(slim_out, wide_out, atol=1e-4, rtol=1e-4)


def test_the_slim_layer_keeps_the_most_active_channels():
    wide, slim = torch.nn.Conv2d(2, 4, 1), torch.nn.Conv2d(2, 2, 1)
    with torch.no_grad():
        wide.weight.copy_(torch.tensor([1.0, 5.0, 0.1, 3.0])[:, None, None, None].expand(4, 2, 1, 1))
        wide.bias.zero_()
    keep, _, _ = fit_slim_conv(wide, slim, torch.rand(2, 2, 4, 4), torch.rand(2, 2, 4, 4))
    assert keep.tolist() == [1, 3]


def test_vgg16_pruned_into_a_full_width_student_is_vgg16(crops, held_out):
    teacher = vgg16_encoder("relu4_1")
    student = StudentEncoder(1.0)
    start_from_teacher(student, teacher, crops)
    # Exact, border included (the student centres its input as VGG16 does); relu4_1's refit has fewer pixels of
    # these small crops than unknowns, so the ridge keeps it close rather than exact.
    for tap in ("relu1_1", "relu2_1", "relu3_1"):
        assert _relative_error(teacher, student, held_out, tap) < 1e-3, tap
    assert _relative_error(teacher, student, held_out, "relu4_1") < 0.1
    with pytest.raises(ValueError, match="centres its input"):
        start_from_teacher(StudentEncoder(0.25, centred=False), teacher, crops)


def test_the_normalised_vgg19_pruned_into_a_full_width_student_is_that_vgg19(crops, held_out):
    """The light level's teacher: its 1x1 colour convolution folds into the first 3x3 one and the student pads by
    reflection as it does, so a full-width student is the network, border included; a quarter one starts near it."""
    teacher = normalised_vgg_encoder()
    student = StudentEncoder(1.0, teacher="vgg19n")
    assert student.taps == ("relu1_1", "relu2_1", "relu3_1") and not student.centred
    start_from_teacher(student, teacher, crops)
    for tap in student.taps:
        assert _relative_error(teacher, student, held_out, tap) < 1e-3, tap
    pruned = StudentEncoder(0.25, teacher="vgg19n")
    start_from_teacher(pruned, teacher, crops)
    errors = {tap: _relative_error(teacher, pruned, held_out, tap) for tap in pruned.taps}
    torch.manual_seed(0)
    assert _relative_error(teacher, StudentEncoder(0.25, teacher="vgg19n"), held_out, "relu3_1") > 0.9
    assert errors["relu1_1"] < 0.15 and errors["relu3_1"] < 0.6, errors
    with pytest.raises(ValueError, match="not in the student encoder"):
        pruned(held_out, ("relu4_1",))


def test_the_bundled_relu3_1_student_is_nearer_the_vgg19_than_its_pruned_start(crops):
    """Distillation did work beyond the pruned start: measured 0.50 -> 0.40 at relu3_1 (0.26 -> 0.20 at relu2_1)."""
    from brushstream.core.nets.pretrained import trained_network
    teacher = normalised_vgg_encoder()
    pruned = StudentEncoder(0.25, teacher="vgg19n")
    start_from_teacher(pruned, teacher, crops)
    bundled = trained_network("student_vgg19n_r31_w025", "student_encoder")[0]
    assert bundled.teacher == "vgg19n" and bundled.width == 0.25
    photos = fixed_crops(SHARED_DATA / "content_eval", 96, 6)
    for tap in ("relu2_1", "relu3_1"):
        assert _relative_error(teacher, bundled, photos, tap) < 0.85 * _relative_error(teacher, pruned, photos, tap)


def test_a_pruned_student_starts_near_the_teacher_where_a_random_one_does_not(crops, held_out):
    teacher = vgg16_encoder("relu4_1")
    pruned = StudentEncoder(0.25)
    start_from_teacher(pruned, teacher, crops)
    errors = {tap: _relative_error(teacher, pruned, held_out, tap) for tap in TAPS}
    torch.manual_seed(0)
    random = StudentEncoder(0.25)
    assert _relative_error(teacher, random, held_out, "relu4_1") > 0.9
    # Copying the kept rows without the refit measured 0.07 / 0.25 / 0.44 / 0.60 here; the refit 0.07 / 0.19 / 0.30 /
    # 0.66 (relu4_1 has fewer pixels than unknowns on these small crops; on 128 px ones the refit wins there too).
    assert errors["relu1_1"] < 0.1 and errors["relu2_1"] < 0.22 and errors["relu3_1"] < 0.36, errors
    assert errors["relu4_1"] < 0.75, errors


def test_a_pruned_slim_decoder_starts_near_the_full_one(crops, held_out):
    encoder = vgg16_encoder("relu4_1")
    wide = vgg_decoder("relu4_1", "adain_vgg16_r41_decoder")
    with torch.no_grad():
        fit_in, test_in = encoder(crops)["relu4_1"], encoder(held_out)["relu4_1"]
        slim = VGGDecoder("relu4_1", 0.25)
        random_error = float((slim(test_in) - wide(test_in)).pow(2).mean())
        from brushstream.core.nets.vgg_decoder import start_from_wide
        start_from_wide(slim, wide, fit_in, fit_in)
        reference = wide(test_in)
        error = float((slim(test_in) - reference).pow(2).mean())
    assert error < 0.35 * float(reference.var()) and error < 0.1 * random_error, (error, random_error)


def test_the_recipes_start_from_the_pruned_networks(photos, tmp_path):
    """The distill recipe's default start is VGG16 pruned into the student, and a slim AdaIN decoder's is the full
    relu4_1 decoder pruned into it: both begin far below a random start's loss."""
    from brushstream.core.train.adain_recipe import AdaINRecipe
    from brushstream.core.train.distill_recipe import DistillRecipe
    cpu = torch.device("cpu")
    batch = fixed_crops(SHARED_DATA / "content_eval", 48, 4)

    def first_loss(recipe, key):
        model = recipe.build_model()
        recipe.setup(cpu)
        recipe.prepare_model(model)
        with torch.no_grad():
            return float(recipe.losses(model, batch, 0, torch.Generator().manual_seed(0))[key])

    common = dict(content_dir=str(photos), width=0.25, size=48)
    pruned, random = (first_loss(DistillRecipe(**common, start_from=s), "embedding") for s in ("teacher", "none"))
    assert pruned < 0.8 * random, (pruned, random)
    styles = dict(style=(str(SHARED_DATA / "styles" / "starry_night.jpg"),), style_size=96, style_bank=2, batch=4)
    pruned, random = (first_loss(AdaINRecipe(**common, **styles, start_from=s), "total")
                      for s in ("adain_vgg16_r41_decoder", "none"))
    assert pruned < 0.5 * random, (pruned, random)


def test_a_student_file_from_before_centring_loads_uncentred(tmp_path):
    """Files written before the student centred its input have no "centred" in their config: they keep working as
    they were trained (no shift), while new students centre."""
    import json

    from safetensors.torch import save_file

    from brushstream.core.nets.pretrained import trained_network
    old = StudentEncoder(0.125, centred=False)
    path = tmp_path / "old_student.safetensors"
    save_file({k: v.contiguous() for k, v in old.state_dict().items()}, str(path),
              metadata={"arch": "student_encoder", "config": json.dumps({"arch": "student_encoder", "width": 0.125})})
    loaded = trained_network(str(path), "student_encoder")[0]
    assert not loaded.centred and float(loaded.input_shift.abs().sum()) == 0
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x)["relu4_1"], old(x)["relu4_1"])
    assert StudentEncoder(0.125).centred and StudentEncoder(0.125).config()["centred"]


def test_a_slim_decoder_with_the_relu3_1_default_start_is_refused_in_one_line():
    from brushstream.core.errors import BrushstreamError
    from brushstream.core.train.adain_recipe import AdaINRecipe
    with pytest.raises(BrushstreamError, match="--start-from: a slim decoder .* e.g. --start-from adain_vgg16_r41"):
        AdaINRecipe(width=0.25).check()
    AdaINRecipe(width=0.25, start_from="adain_vgg16_r41_decoder").check()
    AdaINRecipe(width=1.0).check()
