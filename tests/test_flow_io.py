"""Flow files, flow pictures and `brushstream flow`: .flo round trips and refuses bad files in one line, the colour
wheel follows the benchmark's convention, and the command's DIS flow on a Sintel pair is close to the ground truth."""
import math

import pytest
import torch

from brushstream.core.cli import main
from brushstream.core.errors import BrushstreamError
from brushstream.core.flow.flo_io import read_flo, write_flo
from brushstream.core.flow.visualise import colour_wheel, flow_to_rgb

from .conftest import SHARED_DATA

SINTEL = SHARED_DATA / "flow" / "sintel" / "training"


def test_flo_round_trip_is_exact(tmp_path):
    flow = torch.randn(2, 7, 11) * 30
    path = write_flo(flow.unsqueeze(0), tmp_path / "f.flo")
    assert path.stat().st_size == 12 + 7 * 11 * 8
    assert torch.equal(read_flo(path), flow)
    assert [p.name for p in tmp_path.iterdir()] == ["f.flo"]   # no temporary file left behind


def test_reads_sintel_ground_truth():
    flow = read_flo(SINTEL / "flow" / "alley_1" / "frame_0002.flo")
    assert flow.shape == (2, 436, 1024) and torch.isfinite(flow).all()
    assert 0.5 < flow.pow(2).sum(0).sqrt().mean() < 50   # a real motion field, not zeros or garbage


@pytest.mark.parametrize("damage, words", [
    (lambda b: b[:0], "shorter than its 12-byte header"),
    (lambda b: b[:-8], "truncated or padded"),
    (lambda b: b + b"\0" * 8, "truncated or padded"),
    (lambda b: b"\0\0\0\0" + b[4:], "wrong magic"),
    (lambda b: b[:4] + (-5).to_bytes(4, "little", signed=True) + b[8:], "corrupt .flo header"),
])
def test_bad_flo_files_fail_in_one_line_naming_the_file(tmp_path, damage, words):
    good = write_flo(torch.zeros(2, 3, 4), tmp_path / "good.flo").read_bytes()
    bad = tmp_path / "bad.flo"
    bad.write_bytes(damage(good))
    with pytest.raises(BrushstreamError) as err:
        read_flo(bad)
    assert str(bad) in str(err.value) and words in str(err.value) and "\n" not in str(err.value)


def test_write_refuses_a_wrong_shape_and_leaves_nothing(tmp_path):
    with pytest.raises(BrushstreamError, match="must be"):
        write_flo(torch.zeros(3, 4, 4), tmp_path / "x.flo")
    assert list(tmp_path.iterdir()) == []


def _colour(u, v, max_magnitude=None):
    return flow_to_rgb(torch.tensor([[[[u]], [[v]]]], dtype=torch.float32), max_magnitude)[0, :, 0, 0]


def test_colour_wheel_convention():
    assert colour_wheel().shape == (55, 3)
    right, left = _colour(1.0, 0.0), _colour(-1.0, 0.0)
    assert right[0] > 0.9 and right[1] < 0.1 and right[2] < 0.3        # right is red
    assert left[0] < 0.1 and left[1] > 0.8 and left[2] > 0.8           # left is cyan
    assert not torch.allclose(_colour(0.0, 1.0), _colour(0.0, -1.0), atol=0.2)   # up and down differ
    # Saturation grows with magnitude up to the scale; zero motion is white, unknown is black.
    assert torch.allclose(_colour(0.0, 0.0, 5.0), torch.ones(3))
    weak, strong = _colour(1.0, 0.0, 10.0), _colour(9.0, 0.0, 10.0)
    assert (1 - weak).sum() < (1 - strong).sum()
    assert torch.equal(_colour(math.nan, 0.0), torch.zeros(3)) and torch.equal(_colour(2e9, 0.0), torch.zeros(3))


def test_picture_is_scaled_per_image_by_default():
    flow = torch.zeros(2, 2, 4, 4)
    flow[0, 0] = 1.0
    flow[1, 0] = 8.0
    pictures = flow_to_rgb(flow)
    assert torch.allclose(pictures[0], pictures[1], atol=1e-6)
    fixed = flow_to_rgb(flow, max_magnitude=8.0)
    assert not torch.allclose(fixed[0], fixed[1], atol=0.1)


def test_flow_command_dis_on_sintel_is_close_to_ground_truth(tmp_path, capsys):
    first, second = SINTEL / "final" / "alley_1" / "frame_0002.png", SINTEL / "final" / "alley_1" / "frame_0003.png"
    out = tmp_path / "alley.flo"
    assert main(["flow", str(first), str(second), "--backend", "dis", "--preset", "ultrafast", "-o", str(out)]) == 0
    assert "dis flow 1024x436" in capsys.readouterr().out
    flow, truth = read_flo(out), read_flo(SINTEL / "flow" / "alley_1" / "frame_0002.flo")
    epe = (flow - truth).pow(2).sum(0).sqrt().mean().item()
    still = truth.pow(2).sum(0).sqrt().mean().item()      # the error of answering "no motion"
    assert epe < 0.5 * still, (epe, still)
    picture = tmp_path / "alley.png"
    assert main(["flow", str(first), str(second), "-q", "-o", str(picture)]) == 0
    from brushstream.core.io.image import load_image
    assert load_image(picture).size == (436, 1024)


def test_flow_command_refuses_bad_requests_in_one_line(tmp_path, capsys):
    first = SINTEL / "final" / "alley_1" / "frame_0002.png"
    other = next((SHARED_DATA / "content_eval").glob("*.jpg"))
    assert main(["flow", str(first), str(other), "-o", str(tmp_path / "x.flo")]) == 2
    assert "must have one size" in capsys.readouterr().err
    assert main(["flow", str(first), str(first), "-o", str(tmp_path / "x.txt")]) == 2
    assert ".flo" in capsys.readouterr().err
    for magnitude in ("-1", "0", "nan", "inf"):
        assert main(["flow", str(first), str(first), "--max-magnitude", magnitude, "-o", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [f"brushstream: error: flow: argument --max-magnitude: must be a finite number of pixels "
                       f"above 0, got {magnitude!r}"]
    from PIL import Image
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (10, 8), "gray").save(tiny)
    for backend in ("dis", "farneback"):
        assert main(["flow", str(tiny), str(tiny), "--backend", backend, "-o", str(tmp_path / "x.flo")]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"brushstream: error: {tiny}: frame is 10x8 px; flow needs at least 16 px per side"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.png"]


def test_dis_keeps_a_scaled_frame_large_enough_for_opencv():
    from brushstream.core.flow import get_flow
    frames = torch.rand(2, 1, 3, 40, 60)
    flow = get_flow("dis", preset="ultrafast", scale=0.1)(frames[0], frames[1])   # 6x4 px would fail in OpenCV
    assert flow.shape == (1, 2, 40, 60) and torch.isfinite(flow).all()
