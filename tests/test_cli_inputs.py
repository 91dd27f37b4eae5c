"""What a new user hit on the CLI: inputs are never overwritten, bad values are refused in one line with exit 2
before any work (or weights lookup), and paths mean what they say."""
import os

import pytest
from PIL import Image

from brushstream.core.cli import main
from brushstream.core.methods import DEFAULT_METHOD

from .conftest import SHARED_DATA  # noqa: F401  (marks the module as needing ../shared, see conftest.py)
from .test_cli import PHOTO, STYLE, _run  # noqa: F401  (one CLI runner for both files)


def _photo(tmp_path, name="photo.jpg", size=(48, 40)):
    path = tmp_path / name
    Image.open(PHOTO).convert("RGB").resize(size).save(path)
    return path


def _refused(capsys, args, needle):
    code, err = _run(["stylize", *args], capsys)
    assert code == 2 and len(err) == 1 and needle in err[0], (args, err)
    return err[0]


def test_never_writes_over_an_input(tmp_path, capsys):
    photo = _photo(tmp_path)
    style = tmp_path / "style.jpg"
    style.write_bytes(open(STYLE, "rb").read())
    before = photo.read_bytes(), style.read_bytes()
    _refused(capsys, [str(photo), "--style", str(style), "-o", str(photo)], "is one of the inputs")
    _refused(capsys, [str(photo), "--style", str(style), "-o", str(style)], "is one of the inputs")
    os.chdir(tmp_path)  # the same file by another spelling
    _refused(capsys, ["photo.jpg", "--style", str(style), "-o", f"./{photo.name}"], "is one of the inputs")
    assert (photo.read_bytes(), style.read_bytes()) == before


def test_two_inputs_never_share_an_output(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _photo(folder, "cat.jpg")
    _photo(folder, "cat.png", size=(40, 48))
    (folder / "._cat.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")   # macOS metadata, not an image
    out = tmp_path / "out"
    code, err = _run(["stylize", str(folder), "--style", STYLE, "-o", str(out), "-q"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"cat_jpg_{DEFAULT_METHOD}.png", f"cat_png_{DEFAULT_METHOD}.png"]
    assert Image.open(out / f"cat_png_{DEFAULT_METHOD}.png").size == (40, 48)


@pytest.mark.parametrize("args, needle", [
    (["--style-weights", "nan,1", "--method", "adain"], "style weights must be finite numbers"),
    (["--style-weights", "nan,1", "--method", "wct"], "style weights must be finite numbers"),
    (["--style-weights", "inf,1"], "style weights must be finite numbers"),
    (["--method", "gatys", "--style-weight", "nan"], "style_weight (--style-weight) must be a finite number"),
    (["--method", "gatys", "--tv-weight", "inf"], "tv_weight (--tv-weight) must be a finite number"),
    (["--method", "gatys", "--lr", "nan"], "lr (--lr) must be a finite number"),
    (["--method", "gatys", "--steps", "0"], "steps (--steps) must be in [1, 100000], got '0'"),
    (["--method", "gatys", "--scales", "abc"], "scales (--scales) must be a number, got 'abc'"),
    (["--method", "swap", "--patch-size", "0"], "patch_size (--patch-size) must be in [1, 9]"),
    (["--method", "swap", "--patch-size", "4"], "patch_size (--patch-size) must be odd"),
    (["--method", "swap", "--patch-size", "-3"], "patch_size (--patch-size) must be in [1, 9]"),
    (["--method", "swap", "--patch-size", "99"], "patch_size (--patch-size) must be in [1, 9]"),
    (["--patch-size", "3"], f"--patch-size does not apply to --method {DEFAULT_METHOD}"),
    (["--strength", "nan"], "strength (--strength) must be a finite number"),
    (["--size", "100000"], "--size must be between 16 and 16384 px"),
])
def test_bad_values_are_refused_naming_the_option(tmp_path, capsys, args, needle):
    photo = _photo(tmp_path)
    styles = ["--style", STYLE, "--style", STYLE] if "--style-weights" in args else ["--style", STYLE]
    out = tmp_path / "out.png"
    _refused(capsys, [str(photo), *styles, *args, "-o", str(out)], needle)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _count_decodes(monkeypatch) -> list:
    decodes = []
    real = Image.Image.load

    def load(im):
        decodes.append(getattr(im, "filename", None))
        return real(im)
    monkeypatch.setattr(Image.Image, "load", load)
    return decodes


def test_sizes_over_the_budget_are_refused_before_decoding(tmp_path, capsys, monkeypatch):
    photo = _photo(tmp_path, size=(400, 300))
    out = tmp_path / "out.png"
    decodes = _count_decodes(monkeypatch)
    _refused(capsys, [str(photo), "--style", STYLE, "--size", "12000", "-o", str(out)], "over the memory budget")
    assert str(photo) not in decodes
    # the variable is read at call time, and lifts Gatys' budget too; a budget under 0.1 MP is said in pixels
    monkeypatch.setenv("BRUSHSTREAM_MAX_PIXELS", "1000")
    _refused(capsys, [str(photo), "--style", STYLE, "-o", str(out)], "over the memory budget of 1000 px")
    monkeypatch.setenv("BRUSHSTREAM_MAX_PIXELS", "abc")
    _refused(capsys, [str(photo), "--style", STYLE, "-o", str(out)], "BRUSHSTREAM_MAX_PIXELS must be a whole number")
    monkeypatch.setenv("BRUSHSTREAM_MAX_PIXELS", str(2000 * 1000))
    from brushstream.core.methods import build
    assert build("gatys", progress=False).budget == 2_000_000 > build("gatys").default_max_pixels


@pytest.mark.parametrize("texture, needle", [("-5x10", "each side must be at least 16 px"),
                                             ("5000x5000", "over the memory budget"),
                                             ("axb", "--texture must be WIDTHxHEIGHT")])
def test_texture_sizes_are_checked(tmp_path, capsys, texture, needle):
    _refused(capsys, [f"--texture={texture}", "--method", "wct", "--style", STYLE, "-o", str(tmp_path / "t.png")],
             needle)


def test_output_paths_mean_what_they_say(tmp_path, capsys):
    photo = _photo(tmp_path)
    os.chdir(tmp_path)
    _refused(capsys, [str(photo), "--style", STYLE, "-o", "-"], "writing to standard output is not supported")
    _refused(capsys, [str(photo), "--style", STYLE, "-o", "result"], "give a file name with an image extension")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]    # no folder "-" or "result" made
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _refused(capsys, [str(photo), "--style", STYLE, "-o", str(blocker / "out.png")], "cannot write here")
    code, err = _run(["stylize", str(photo), "--style", STYLE, "-o", "outdir/", "-q"], capsys)
    assert code == 0 and (tmp_path / "outdir" / f"photo_{DEFAULT_METHOD}.png").exists(), err


def test_inputs_are_checked_before_the_weights_lookup(tmp_path, capsys, monkeypatch):
    """With no VGG16 anywhere, a bad input is still what the user hears about, at once."""
    monkeypatch.delenv("BRUSHSTREAM_WEIGHTS_DIR")
    from brushstream.core.hub import weights
    lookups = []
    real_resolve = weights.resolve
    monkeypatch.setattr(weights, "resolve", lambda *a, **kw: lookups.append(a) or real_resolve(*a, **kw))
    photo = _photo(tmp_path)
    _refused(capsys, [str(tmp_path / "missing.jpg"), "--style", STYLE, "--method", "gatys", "-o",
                      str(tmp_path / "o.png")], "missing.jpg: no such file")
    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    _refused(capsys, [str(gif), "--style", STYLE, "--method", "gatys", "-o", str(tmp_path / "o.png")],
             "animated image with 2 frames")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(photo.read_bytes()[:-200])     # the header is whole: only decoding sees the loss
    _refused(capsys, [str(truncated), "--style", STYLE, "--method", "gatys", "-o", str(tmp_path / "o.png")],
             "truncated.jpg: truncated or corrupt image data")
    assert lookups == []
    err = _refused(capsys, [str(photo), "--style", STYLE, "--method", "gatys", "-o", str(tmp_path / "o.png")],
                   "vgg16_imagenet_caffe")
    assert "BRUSHSTREAM_WEIGHTS_DIR" in err and lookups


def test_a_bad_input_in_a_batch_stops_it_before_any_output(tmp_path, capsys):
    good = [_photo(tmp_path, f"p{i}.jpg") for i in range(2)]
    truncated = tmp_path / "p2.jpg"
    truncated.write_bytes(good[0].read_bytes()[:-200])
    out = tmp_path / "out"
    err = _refused(capsys, [*map(str, good), str(truncated), "--style", STYLE, "-o", f"{out}/"],
                   "p2.jpg: truncated or corrupt image data")
    assert "1 of 3 inputs unusable; nothing written" in err and not out.exists()


def test_several_inputs_never_make_a_folder_named_like_an_image(tmp_path, capsys):
    photos = [_photo(tmp_path, f"p{i}.jpg") for i in range(2)]
    os.chdir(tmp_path)
    _refused(capsys, [*map(str, photos), "--style", STYLE, "-o", "name.png"], "2 inputs need an output folder")
    folder = tmp_path / "in"
    folder.mkdir()
    _photo(folder, "cat.jpg")
    _refused(capsys, [str(folder), "--style", STYLE, "-o", "dirout.jpg"], "a folder input needs an output folder")
    assert not (tmp_path / "name.png").exists() and not (tmp_path / "dirout.jpg").exists()


def test_damaged_weights_are_refused_and_nothing_is_written(tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from brushstream.core.hub.weights import resolve
    source = resolve("johnson_rt_udnie")
    tensors = load_file(str(source))
    with safe_open(str(source), "pt") as f:
        metadata = f.metadata()
    last = sorted(tensors)[-1]
    tensors[last] = tensors[last].clone()
    tensors[last].view(-1)[:3] = float("nan")
    damaged = tmp_path / "damaged.safetensors"
    save_file(tensors, str(damaged), metadata)
    out = tmp_path / "out.png"
    _refused(capsys, [str(_photo(tmp_path)), "--method", "johnson", "--model", str(damaged), "-o", str(out)],
                   f"damaged.safetensors: tensor {last!r} holds NaN or infinite values")
    assert not out.exists()


def test_a_mask_of_another_aspect_is_refused(tmp_path, capsys):
    photo = _photo(tmp_path, size=(48, 40))
    mask = tmp_path / "mask.png"
    Image.new("L", (40, 40), 255).save(mask)
    _refused(capsys, [str(photo), "--style", STYLE, "--style", STYLE, "--mask", str(mask), "--method", "adain", "-o",
                      str(tmp_path / "o.png")], "the mask must have the content's aspect ratio")
    Image.new("L", (96, 80), 255).save(mask)   # same aspect, another size: resized to fit
    code, err = _run(["stylize", str(photo), "--style", STYLE, "--style", STYLE, "--mask", str(mask), "--method", "adain",
                      "-o", str(tmp_path / "o.png"), "-q"], capsys)
    assert code == 0, err


def test_eval_refuses_a_file_as_its_report_folder(tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("keep me")
    code = main(["eval", str(PHOTO), "--style", STYLE, "-o", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "the report goes in a directory" in err[0]
    assert target.read_text() == "keep me"


def test_argument_errors_name_the_subcommand_once(tmp_path, capsys):
    code, err = _run(["stylize", str(_photo(tmp_path)), "--size", "12.5", "-o", str(tmp_path / "o.png")], capsys)
    assert code == 2 and err == ["brushstream: error: stylize: argument --size: invalid int value: '12.5'"]
