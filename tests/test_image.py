"""Image input/output: header checks before decoding, reduced JPEG decodes, output-path checks, atomic writes."""
from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, ImageOps

from brushstream.core.errors import BrushstreamError
from brushstream.core.io import atomic
from brushstream.core.io.atomic import atomic_path
from brushstream.core.io.image import LoadedImage, check_output_path, image_size, list_images, load_image, save_image
from brushstream.core.ops.resize import resize_long_side

ROOT = Path(__file__).resolve().parents[2]  # the folder that holds the package, for the child process


def _photo(w: int, h: int) -> Image.Image:
    """A smooth RGB test picture (JPEG-friendly and cheap to make at any size)."""
    gx = Image.linear_gradient("L").resize((w, h))
    gy = gx.transpose(Image.Transpose.ROTATE_90).resize((w, h))
    return Image.merge("RGB", (gx, gy, Image.new("L", (w, h), 90)))


def _random_png(path: Path, w: int = 30, h: int = 20, **save) -> np.ndarray:
    arr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, **save)
    return arr


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, type) of each chunk."""
    out, pos = [], 8
    while pos < len(data):
        length, cid = struct.unpack(">I4s", data[pos:pos + 8])
        out.append((pos, cid))
        pos += 12 + length
    return out


@contextlib.contextmanager
def no_decoding():
    """Any attempt to decode pixel data inside the block fails the test."""
    def refuse(self, *args, **kwargs):
        pytest.fail("pixel data was decoded")
    Image.init()  # importing every plugin builds a few small images; do it before watching
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", refuse)
        m.setattr(Image.Image, "load", refuse)
        yield


# --- load_image(long_side=..., max_pixels=...) -------------------------------------------------

def test_large_jpeg_is_decoded_at_reduced_scale(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    _photo(6000, 4000).save(path, quality=90)
    decoded = []
    real_load = ImageFile.ImageFile.load

    def recording_load(self):
        decoded.append(self.size)
        return real_load(self)
    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)

    img = load_image(path, long_side=500)

    assert img.size == (333, 500)  # round(4000 * 500 / 6000) = 333
    assert img.file_size == (4000, 6000)
    # 1/4 scale: the smallest JPEG scale still at least twice 500x333 (load() may be called again, a no-op)
    assert set(decoded) == {(1500, 1000)}
    assert img.image.min() >= 0 and img.image.max() <= 1


def test_reduced_jpeg_decode_matches_a_full_decode(tmp_path):
    path = tmp_path / "photo.jpg"
    _photo(1600, 1200).save(path, quality=95)
    reduced = load_image(path, long_side=300).image
    full = resize_long_side(load_image(path).image, 300)
    assert reduced.shape == full.shape == (1, 3, 225, 300)
    assert (reduced - full).abs().mean() < 0.004


def test_long_side_is_bit_identical_to_resizing_a_full_load(tmp_path):
    path = tmp_path / "a.png"
    _random_png(path, 90, 61)
    got = load_image(path, long_side=40)
    assert torch.equal(got.image, resize_long_side(load_image(path).image, 40))
    assert got.file_size == (61, 90)
    assert load_image(path).file_size == (61, 90)


def test_long_side_resizes_alpha_alike(tmp_path):
    path = tmp_path / "rgba.png"
    arr = np.random.default_rng(1).integers(0, 256, (40, 80, 4), dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(path)
    img = load_image(path, long_side=20)
    assert img.size == (10, 20) and img.alpha.shape == (1, 1, 10, 20)
    assert img.alpha.min() >= 0 and img.alpha.max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    path = tmp_path / "o.png"
    _random_png(path, 5, 3, exif=_exif(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)), dtype=np.float32) / 255
    img = load_image(path)
    assert torch.equal(img.image[0].permute(1, 2, 0), torch.from_numpy(expected))
    assert image_size(path) == img.file_size == expected.shape[:2]


def test_long_side_of_a_sideways_jpeg(tmp_path):
    path = tmp_path / "side.jpg"
    _photo(600, 400).save(path, exif=_exif(6))  # stored landscape, shown portrait
    assert image_size(path) == (600, 400)
    img = load_image(path, long_side=300)
    assert img.size == (300, 200) and img.file_size == (600, 400)


def test_png_exif_after_the_pixel_data_is_found_without_decoding(tmp_path):
    path = tmp_path / "late.png"
    _random_png(path, 30, 20)
    data = open(path, "rb").read()
    iend = _png_chunks(data)[-1][0]
    exif = _exif(6).tobytes()[6:]  # Pillow's bytes start with "Exif\0\0"; the chunk holds the TIFF data
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(">I", zlib.crc32(b"eXIf" + exif))
    path.write_bytes(data[:iend] + chunk + data[iend:])
    with no_decoding():
        assert image_size(path) == (30, 20)
    assert load_image(path).size == (30, 20)


def test_budget_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.jpg"
    _photo(3000, 2000).save(path)
    with no_decoding():
        with pytest.raises(BrushstreamError) as err:
            load_image(path, long_side=2000, max_pixels=1_000_000)
        msg = str(err.value)
        assert str(path) in msg and "2000x1333" in msg and "memory budget of 1.0 MP" in msg
        assert "--size" in msg and "BRUSHSTREAM_MAX_PIXELS" in msg and "\n" not in msg
        with pytest.raises(BrushstreamError, match="memory budget"):
            image_size(path, long_side=2000, max_pixels=1_000_000)
        with pytest.raises(BrushstreamError, match="memory budget"):
            load_image(path, max_pixels=5_000_000)  # no long_side: the file's own size counts
    assert load_image(path, long_side=1000, max_pixels=1_000_000).size == (667, 1000)


def test_decode_limit_applies_to_the_reduced_size(tmp_path, monkeypatch):
    from brushstream.core.io import image as image_module
    path = tmp_path / "big.jpg"
    _photo(2400, 1600).save(path)
    monkeypatch.setattr(image_module, "MAX_DECODE_PIXELS", 1_000_000)
    with pytest.raises(BrushstreamError, match="too large to decode"):
        image_size(path)
    with pytest.raises(BrushstreamError, match="too large to decode"):
        load_image(path)
    assert load_image(path, long_side=600).size == (400, 600)  # decoded at 1/2: 1200x800 < 1 MP


@pytest.mark.parametrize("bad", [0, -5, 2.5, "512", True])
def test_bad_long_side_is_refused(tmp_path, bad):
    path = tmp_path / "a.png"
    _random_png(path)
    with pytest.raises(BrushstreamError, match="long side"):
        load_image(path, long_side=bad)


def test_old_constructor_still_works():
    img = LoadedImage(torch.zeros(1, 3, 4, 5), None, Path("x.png"), 8, "RGB")
    assert img.size == (4, 5) and img.file_size is None


# --- refusals -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animated_image_is_refused(tmp_path, suffix):
    path = tmp_path / f"anim{suffix}"
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    for call in (load_image, image_size):
        with no_decoding(), pytest.raises(BrushstreamError) as err:
            call(path)
        assert str(err.value) == f"{path}: animated image with 3 frames; give a single still frame"


def test_single_frame_gif_loads(tmp_path):
    path = tmp_path / "still.gif"
    Image.new("RGB", (16, 8), "red").save(path)
    assert load_image(path).size == (8, 16)


def test_png_with_a_bad_crc_is_refused(tmp_path):
    path = tmp_path / "crc.png"
    _random_png(path)
    data = bytearray(path.read_bytes())
    pos = next(p for p, cid in _png_chunks(bytes(data)) if cid == b"IDAT")
    length = struct.unpack(">I", data[pos:pos + 4])[0]
    data[pos + 8 + length] ^= 0xFF  # first byte of the IDAT CRC
    path.write_bytes(bytes(data))
    with pytest.raises(BrushstreamError) as err:
        load_image(path)
    assert str(err.value).startswith(f"{path}: truncated or corrupt image data (")


def test_header_checks_without_decoding(tmp_path):
    jpg, png = tmp_path / "a.jpg", tmp_path / "b.png"
    _photo(64, 48).save(jpg)
    _random_png(png, 30, 20)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with no_decoding():
        assert image_size(jpg) == (48, 64)
        assert image_size(png) == (20, 30)
        for name, problem in [("missing.png", "no such file"), ("empty.png", "empty file"),
                              ("junk.png", "not a readable image"), (".", "is a directory")]:
            with pytest.raises(BrushstreamError, match=problem):
                image_size(tmp_path / name)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "cut.png"
    _random_png(path, 200, 200)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(BrushstreamError, match="truncated or corrupt"):
        load_image(path)


# --- list_images ----------------------------------------------------------------------------

def test_list_images_skips_hidden_files(tmp_path):
    for name in ("b.png", "a.jpg", "._x.jpg", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.png"]


def test_list_images_with_only_hidden_files_is_an_error(tmp_path):
    (tmp_path / "._x.jpg").write_bytes(b"x")
    with pytest.raises(BrushstreamError, match="holds no images"):
        list_images(tmp_path)


# --- check_output_path ----------------------------------------------------------------------

def test_stdout_is_refused():
    with pytest.raises(BrushstreamError, match="standard output is not supported"):
        check_output_path("-")


def test_missing_extension_is_refused(tmp_path):
    with pytest.raises(BrushstreamError, match="without extension"):
        check_output_path(tmp_path / "out")


def test_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions")
        for target in (locked / "out.png", locked / "new" / "deeper" / "out.png"):
            with pytest.raises(BrushstreamError) as err:
                check_output_path(target)
            assert str(err.value).startswith(f"{target}: cannot write here (")
        assert not (locked / "new").exists()
    finally:
        locked.chmod(0o700)


def test_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    """The same check where the suite runs as root (which os.access lets write anywhere)."""
    from brushstream.core.io import image as image_module
    target = tmp_path / "out.png"
    real_access = os.access
    monkeypatch.setattr(image_module.os, "access",
                        lambda p, mode, **kw: False if Path(p) == tmp_path else real_access(p, mode, **kw))
    with pytest.raises(BrushstreamError, match=r"cannot write here \(no permission to write in "):
        check_output_path(target)


def test_parent_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for target in (tmp_path / "file.txt" / "out.png", tmp_path / "file.txt" / "sub" / "out.png"):
        with pytest.raises(BrushstreamError, match="cannot write here .*is not a directory"):
            check_output_path(target)


def test_check_output_path_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "out.png"
    assert check_output_path(target) == target
    assert list(tmp_path.iterdir()) == []


# --- atomic writes --------------------------------------------------------------------------

@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(143)])
def test_atomic_path_leaves_nothing_on_error(tmp_path, error):
    target = tmp_path / "out.png"
    with pytest.raises(type(error)):
        with atomic_path(target) as tmp:
            assert Path(tmp).name.startswith(".out.") and tmp.endswith(".png")
            Path(tmp).write_bytes(b"half")
            raise error
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_an_existing_target_on_error(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            Path(tmp).write_bytes(b"new")
            raise RuntimeError
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_atomic_path_honours_umask_without_touching_it(tmp_path, monkeypatch):
    if os.name != "posix":
        pytest.skip("POSIX file modes")
    target = tmp_path / "out.png"
    old = os.umask(0o027)
    try:
        with monkeypatch.context() as m:
            m.setattr(os, "umask", lambda *a: pytest.fail("os.umask was called"))
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes(b"data")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"data"
    assert target.stat().st_mode & 0o777 == 0o640
    assert list(tmp_path.iterdir()) == [target]


def test_save_image_round_trip_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "out.png"
    save_image(torch.rand(1, 3, 8, 12), target)
    assert load_image(target).size == (8, 12)
    assert [p.name for p in target.parent.iterdir()] == ["out.png"]


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM delivery is POSIX")
def test_sigterm_removes_the_temp_file(tmp_path):
    target = tmp_path / "out.png"
    child = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from brushstream.core.io.atomic import atomic_path, exit_cleanly_on_sigterm
        exit_cleanly_on_sigterm()
        with atomic_path({str(target)!r}) as tmp:
            Path(tmp).write_bytes(b"partial")
            print("ready", flush=True)
            time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert len(list(tmp_path.iterdir())) == 1  # the temp file exists while writing
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_exit_cleanly_on_sigterm_is_a_no_op_off_the_main_thread():
    import threading
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=atomic.exit_cleanly_on_sigterm)
    thread.start()
    thread.join()
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_save_image_refuses_non_finite_pixels(tmp_path, bad):
    image = torch.rand(3, 16, 16)
    image[1, 3, 4] = bad   # one pixel: it would be written as black or white without a word
    with pytest.raises(BrushstreamError, match="out.png: the result holds NaN or infinite values"):
        save_image(image, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
