"""The CLI as users meet it: real files in, one clear line and exit 2 on bad input, atomic outputs."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from brushstream.core.cli import main
from brushstream.core.io.image import load_image
from brushstream.core.methods import DEFAULT_METHOD

from .conftest import SHARED_DATA

STYLE = str(SHARED_DATA / "styles" / "starry_night.jpg")
PHOTO = SHARED_DATA / "content_eval" / "skimage_chelsea.jpg"


def _run(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def _small_photo(tmp_path, name="photo.jpg", size=(70, 50), mode="RGB", **save):
    im = Image.open(PHOTO).convert("RGB").resize(size)
    im = im.convert(mode) if mode != "RGB" else im
    path = tmp_path / name
    im.save(path, **save)
    return path


def test_stylize_writes_an_image_of_the_content_size(tmp_path, capsys):
    src = _small_photo(tmp_path, size=(67, 45))
    out = tmp_path / "out.png"
    code, _ = _run([ "stylize", str(src), "--style", STYLE, "-o", str(out), "-q"], capsys)
    assert code == 0
    assert Image.open(out).size == (67, 45)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_size_option_blend_and_directory_output(tmp_path, capsys):
    a, b = _small_photo(tmp_path, "a.jpg"), _small_photo(tmp_path, "b.png", size=(40, 60))
    out_dir = tmp_path / "outs"
    out_dir.mkdir()
    code, _ = _run(["stylize", str(a), str(b), "--style", STYLE, "--style", str(SHARED_DATA / "styles" / "mondrian.jpg"),
                    "--style-weights", "0.7,0.3", "--size", "48", "--method", "wct", "-o", str(out_dir), "-q"], capsys)
    assert code == 0
    assert Image.open(out_dir / "a_wct.png").size == (48, 34)
    assert Image.open(out_dir / "b_wct.png").size == (32, 48)


def test_a_folder_of_photos_goes_to_a_folder_of_outputs(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _small_photo(photos, "one.jpg")
    _small_photo(photos, "two.png")
    (photos / "notes.txt").write_text("not an image")
    code, _ = _run(["stylize", str(photos), "--style", STYLE, "-o", str(tmp_path / "styled"), "-q"], capsys)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "styled").iterdir()) == [f"one_{DEFAULT_METHOD}.png", f"two_{DEFAULT_METHOD}.png"]


def _corrupt_files(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all" * 10)
    good = _small_photo(tmp_path, "full.jpg", size=(200, 150))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1), (255, 0, 0)).save(tiny)
    return {"empty": (empty, "empty file"), "garbage": (garbage, "not a readable image"),
            "truncated": (truncated, "truncated or corrupt"), "text": (text, "not a readable image"),
            "tiny": (tiny, "1x1 px")}


@pytest.mark.parametrize("case", ["empty", "garbage", "truncated", "text", "tiny"])
def test_bad_content_gives_one_line_exit_2_and_no_output(tmp_path, capsys, case):
    path, expected = _corrupt_files(tmp_path)[case]
    out = tmp_path / "out.png"
    code, err = _run(["stylize", str(path), "--style", STYLE, "-o", str(out)], capsys)
    assert code == 2
    assert len(err) == 1 and str(path) in err[0] and expected in err[0], err
    assert not out.exists()


def test_bad_style_missing_style_and_unknown_method(tmp_path, capsys):
    photo = _small_photo(tmp_path)
    out = tmp_path / "out.png"
    bad_style = _corrupt_files(tmp_path)["truncated"][0]
    for args, needle in [
        (["--style", str(bad_style)], "truncated"),
        (["--style", str(tmp_path / "nope.jpg")], "nope.jpg: no such file"),
        (["--style", STYLE, "--method", "picasso"], "invalid choice"),
        (["--style", STYLE, "--strength", "3"], "strength (--strength) must be in [0, 1], got '3'"),
        (["--style", STYLE, "--style-weights", "1,2"], "2 style weights given for 1 styles"),
    ]:
        code, err = _run(["stylize", str(photo), *args, "-o", str(out)], capsys)
        assert code == 2 and len(err) == 1 and needle in err[0], (args, err)
        assert not out.exists()
    code, err = _run(["stylize", str(photo), "--style", STYLE, "-o", str(tmp_path / "out.xyz")], capsys)
    assert code == 2 and "cannot write .xyz" in err[0]


def test_huge_image_is_refused_clearly_unless_downscaled(tmp_path, capsys):
    huge = tmp_path / "huge.png"
    Image.new("RGB", (4000, 3000), (120, 130, 140)).save(huge, compress_level=1)   # 12 MP: 3x the default budget
    out = tmp_path / "out.png"
    code, err = _run(["stylize", str(huge), "--style", STYLE, "-o", str(out)], capsys)
    assert code == 2 and len(err) == 1 and "huge.png" in err[0] and "memory budget" in err[0]
    assert not out.exists()
    code, _ = _run(["stylize", str(huge), "--style", STYLE, "--size", "64", "-o", str(out), "-q"], capsys)
    assert code == 0 and Image.open(out).size == (64, 48)


@pytest.mark.parametrize("mode,save", [("L", {}), ("P", {}), ("RGBA", {}), ("LA", {}), ("I;16", {})])
def test_grayscale_palette_alpha_and_16bit_inputs_are_converted(tmp_path, capsys, mode, save):
    src = tmp_path / f"in_{mode.replace(';', '')}.png"
    base = Image.open(PHOTO).convert("RGB").resize((64, 48))
    if mode in ("RGBA", "LA"):
        im = base.convert(mode)
        im.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))))
    elif mode == "I;16":
        im = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
    else:
        im = base.convert(mode)
    im.save(src, **save)
    out = tmp_path / "out.png"
    code, err = _run(["stylize", str(src), "--style", STYLE, "-o", str(out), "-q"], capsys)
    assert code == 0, err
    result = load_image(out)
    assert result.size == (48, 64)
    if mode in ("RGBA", "LA"):
        assert result.alpha is not None  # transparency survives stylization
        assert result.alpha[0, 0, 0, 0] < 0.05 and result.alpha[0, 0, 0, -1] > 0.95
    if mode == "I;16":
        assert load_image(src).bit_depth == 16 and result.bit_depth == 16


def test_16bit_rgb_png_keeps_its_precision(tmp_path):
    import cv2
    ramp = (np.linspace(0, 65535, 64 * 48 * 3) % 65536).astype(np.uint16).reshape(48, 64, 3)
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), ramp)
    img = load_image(path)
    assert img.bit_depth == 16
    expected = ramp[..., ::-1].astype(np.float32) / 65535.0
    np.testing.assert_allclose(img.image[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_weights_list_names_every_manifest_entry_first(capsys):
    code = main(["weights", "list"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    names = [line.split("\t")[0] for line in lines]
    assert "vgg19_normalised_r31_encoder" in names and "vgg16_imagenet_caffe" in names


def test_console_script_demo_runs_on_bundled_samples(tmp_path):
    out = tmp_path / "demo.png"
    proc = subprocess.run([sys.executable, "-m", "brushstream.core.cli", "stylize", "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert Image.open(out).size == (451, 300)
    bad = subprocess.run([sys.executable, "-m", "brushstream.core.cli", "stylize", str(tmp_path / "missing.jpg"),
                          "--style", STYLE, "-o", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "missing.jpg" in bad.stderr


def test_texture_synthesis_from_noise_and_python_api(tmp_path, capsys):
    out = tmp_path / "texture.png"
    code, err = _run(["stylize", "--texture", "64x48", "--method", "wct", "--style", STYLE, "-o", str(out)], capsys)
    assert code == 0, err
    assert Image.open(out).size == (64, 48)
    code, err = _run(["stylize", "--texture", "64x48", "--method", "adain", "--style", STYLE, "-o", str(out)], capsys)
    assert code == 2 and "--texture works with --method gatys or wct" in err[0]

    import brushstream
    api_out = tmp_path / "api.png"
    result = brushstream.stylize(str(PHOTO), STYLE, method="adain", strength=0.5, size=96, output=api_out)
    assert tuple(result.shape) == (1, 3, 64, 96) and Image.open(api_out).size == (96, 64)


def test_gatys_options_reach_the_optimiser(tmp_path, capsys):
    src = _small_photo(tmp_path, size=(40, 32))
    out = tmp_path / "g.png"
    args = ["stylize", str(src), "--style", STYLE, "--method", "gatys", "--steps", "3", "--optimizer", "adam",
            "--style-layers", "relu1_1,relu2_1", "--content-layers", "relu2_2", "--tv-weight", "0.1",
            "--preserve-color", "-o", str(out), "-q"]
    code, err = _run(args, capsys)
    assert code == 0, err
    assert Image.open(out).size == (40, 32)
    code, err = _run(args[:-3] + ["--style-layers", "relu9_9", "-o", str(out)], capsys)
    assert code == 2 and "style_layers (--style-layers) has unknown names relu9_9" in err[0]


def test_eval_writes_a_report_and_a_comparison_sheet(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["eval", str(PHOTO), "--style", STYLE, "--methods", "adain,wct", "--size", "64", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "adain\tgram ratio" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]) == {"adain", "wct"}
    assert all(0 < s["gram_ratio"] < 1 for s in report["summary"].values())  # both moved towards the style
    assert Image.open(out / "sheet.png").width == 4 * 192


def test_readme_python_snippet_runs(tmp_path, monkeypatch):
    """The README's Python example is real code: it runs against the bundled samples."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    snippet = re.search(r"Python \(run from the repository root.*?```python\n(.*?)```", text, re.S).group(1)
    snippet = snippet.replace('"assets/', f'"{root}/assets/')
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, "README.md", "exec"), {})
    assert max(Image.open(tmp_path / "out.png").size) == 384
    assert max(Image.open(tmp_path / "out_adain.png").size) == 256


def test_methods_command_lists_the_registry(capsys):
    from brushstream.core.methods import available

    assert main(["methods"]) == 0
    printed = capsys.readouterr().out
    for name, cls in available().items():
        assert f"{name}\t{cls.summary}" in printed
        block = printed.split(f"{name}\t", 1)[1].splitlines()
        assert block[1].startswith("    can: ")
        assert all(c in block[1] for c in ("arbitrary_style", "texture_synthesis", "optimisation")
                   if getattr(cls.capabilities, c))
        for opt in cls.options:
            assert f"{opt.flag}: {opt.describe()}" in printed


def test_cli_turns_sigterm_into_a_clean_exit(capsys):
    import signal

    from brushstream.core.io import atomic

    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        main(["methods"])
        assert signal.getsignal(signal.SIGTERM) is atomic._exit_on_sigterm   # finally-blocks run on SIGTERM
    finally:
        signal.signal(signal.SIGTERM, before)
