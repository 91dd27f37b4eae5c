"""Video input/output: containers we read, colour matrices, timestamps, audio carry-over, bad input, atomic writes."""
from __future__ import annotations

import errno
import gc
import os
import random
import tracemalloc
import weakref
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import Interpolation
from PIL import Image

from brushstream.core.errors import BrushstreamError
from brushstream.core.io import video_writer
from brushstream.core.io.video import (
    AudioSource,
    VideoReader,
    VideoWriter,
    check_video_output,
    output_size,
    probe_video,
)

W, H = 64, 48
ACCURATE = Interpolation.BILINEAR | Interpolation.ACCURATE_RND  # as the writer converts
RATE = 48000


def _picture(i: int, w: int = W, h: int = H) -> np.ndarray:
    """A moving gradient with a bright square: every frame differs, and compresses well."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([(x * 4 + i * 8) % 256, (y * 5) % 256, np.full_like(x, (i * 16) % 256)], axis=-1)
    s = (i * 3) % max(1, w - 8)
    rgb[8:16, s:s + 8] = 255
    return rgb.astype(np.uint8)


def _tone(seconds: float, *, onset: float = 0.0) -> np.ndarray:
    """A 440 Hz sine (mono float32) that is silent before ``onset`` seconds."""
    t = np.arange(round(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t) * (t >= onset)).astype(np.float32)


def make_clip(path: Path, n: int = 12, *, size=(W, H), fps=Fraction(30), codec="libx264", pix_fmt="yuv420p",
              times=None, audio=None, frames=None, options=None, container_options=None) -> Path:
    """Encode a small clip with PyAV: ``times`` gives per-frame seconds (VFR), ``audio`` a mono float signal."""
    fps = Fraction(fps)
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        tb = Fraction(1, 90000) if times is not None else 1 / fps
        stream.codec_context.time_base = tb
        if times is not None:
            stream.time_base = tb
        astream = out.add_stream("aac", rate=RATE, layout="mono") if audio is not None else None
        for i in range(n):
            rgb = frames[i] if frames is not None else _picture(i, *size)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = round(times[i] / tb) if times is not None else i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if astream is not None:
            for pos in range(0, len(audio), 1024):
                chunk = audio[None, pos:pos + 1024]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, pos
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode():
                out.mux(packet)
    return path


def _frames(path, **kw) -> list:
    with VideoReader(path, **kw) as reader:
        return list(reader)


def _streams(path):
    """(video stream facts, decoded audio as (start seconds, samples) or None) of a written file."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        facts = {"average_rate": v.average_rate, "colorspace": cc.colorspace, "primaries": cc.color_primaries,
                 "trc": cc.color_trc, "color_range": cc.color_range, "times": [float(f.time) for f in c.decode(v)]}
    audio = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            chunks, start = [], None
            for frame in c.decode(a):
                start = float(frame.time) if start is None else start
                chunks.append(frame.to_ndarray().mean(axis=0))
            audio = (start, np.concatenate(chunks), a.codec_context.name)
    return facts, audio


def _audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def _onset(samples: np.ndarray) -> float:
    return int(np.argmax(np.abs(samples) > 0.1)) / RATE


# -- reading ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, codec, pix_fmt, options", [
    ("a.mp4", "libx264", "yuv420p", {}),
    ("a.mov", "libx264", "yuv420p", {}),
    ("a.mkv", "libx264", "yuv420p", {}),
    ("a.webm", "libvpx-vp9", "yuv420p", {"deadline": "realtime", "cpu-used": "8"}),
    ("a.avi", "mpeg4", "yuv420p", {}),
    ("b.avi", "mjpeg", "yuvj420p", {}),
])
def test_reads_containers(tmp_path, name, codec, pix_fmt, options):
    path = make_clip(tmp_path / name, 12, codec=codec, pix_fmt=pix_fmt, options=options)
    info = probe_video(path)
    assert (info.kind, info.width, info.height, info.fps) == ("container", W, H, 30)
    assert info.frame_count in (12, None) and not info.variable_rate and not info.has_audio
    frames = _frames(path)
    assert [f.index for f in frames] == list(range(12))
    assert [round(f.time * 30) for f in frames] == list(range(12))
    assert all(f.image.shape == (1, 3, H, W) and f.image.dtype == torch.float32 for f in frames)
    # Decoded pictures look like what was encoded (lossy codecs: a loose bound).
    want = torch.from_numpy(_picture(5)).permute(2, 0, 1).float() / 255
    assert (frames[5].image[0] - want).abs().mean() < 0.05


def test_reads_animated_gif(tmp_path):
    pictures = [Image.fromarray(_picture(i)) for i in range(6)]
    path = tmp_path / "a.gif"
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=[100, 100, 50, 50, 100, 100], loop=0)
    info = probe_video(path)
    assert (info.kind, info.width, info.height, info.frame_count) == ("gif", W, H, 6)
    assert info.duration == pytest.approx(0.5) and info.fps == 12 and info.variable_rate
    frames = _frames(path)
    assert [round(f.time, 2) for f in frames] == [0, 0.1, 0.2, 0.25, 0.3, 0.4]


def test_reads_image_folder(tmp_path):
    for i in range(5):
        Image.fromarray(_picture(i)).save(tmp_path / f"f{i:03d}.png")
    (tmp_path / ".hidden.png").write_bytes(b"junk")  # skipped, like macOS metadata files
    (tmp_path / "notes.txt").write_text("not a frame")
    info = probe_video(tmp_path, folder_fps=10)
    assert (info.kind, info.width, info.height, info.fps, info.frame_count) == ("folder", W, H, 10, 5)
    frames = _frames(tmp_path, folder_fps=10, start=0.2)
    assert [(f.index, f.time) for f in frames] == [(2, 0.2), (3, 0.3), (4, 0.4)]
    want = torch.from_numpy(_picture(2)).permute(2, 0, 1).float() / 255
    assert torch.allclose(frames[0].image[0], want, atol=1e-6)  # PNG is lossless


def test_start_max_frames_and_resize(tmp_path):
    path = make_clip(tmp_path / "a.mp4", 30, options={"g": "10"})  # keyframes every 10: the seek lands before
    frames = _frames(path, start=0.5, max_frames=4, size=(32, 24))
    assert [f.index for f in frames] == [15, 16, 17, 18]
    assert [f.time for f in frames] == pytest.approx([0.5, 16 / 30, 17 / 30, 18 / 30])
    assert frames[0].image.shape == (1, 3, 24, 32)
    full = _frames(path)
    small = torch.nn.functional.interpolate(full[15].image, size=(24, 32), mode="area")
    assert (frames[0].image - small).abs().mean() < 0.02
    assert len(_frames(path, size=(96, 72), max_frames=2)) == 2  # enlarging works too
    with pytest.raises(BrushstreamError, match="has no frames at or after 5 s"):
        _frames(path, start=5)


def test_odd_size_input_becomes_even(tmp_path):
    path = make_clip(tmp_path / "odd.mkv", 4, size=(65, 47), codec="mpeg4", pix_fmt="yuv420p")
    info = probe_video(path)
    assert (info.width, info.height) == (65, 47)
    assert _frames(path)[0].image.shape == (1, 3, 48, 66)


def test_output_size():
    assert output_size(1920, 1080, None) == (1920, 1080)
    assert output_size(1920, 1080, 480) == (854, 480)
    assert output_size(65, 47, None) == (66, 48)
    with pytest.raises(BrushstreamError, match="at least 16 px"):
        output_size(640, 480, 10)


def test_display_rotation_is_applied(tmp_path):
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.set_display_rotation(-90)  # stored landscape, shown rotated a quarter turn clockwise
        for i in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_picture(0), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    info = probe_video(path)
    assert (info.width, info.height) == (H, W)
    image = _frames(path, max_frames=1)[0].image[0]
    want = torch.from_numpy(np.rot90(_picture(0), -1).copy()).permute(2, 0, 1).float() / 255
    assert image.shape == (3, W, H) and (image - want).abs().mean() < 0.03


# -- colour -------------------------------------------------------------------------------------

PATCHES = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (128, 128, 128), (200, 150, 40), (20, 60, 180),
           (16, 16, 16)]


def _patch_picture() -> np.ndarray:
    rgb = np.zeros((H, W, 3), np.uint8)
    for k, colour in enumerate(PATCHES):  # 4 x 2 patches of 16 x 24
        rgb[(k // 4) * 24:(k // 4 + 1) * 24, (k % 4) * 16:(k % 4 + 1) * 16] = colour
    return rgb


def _patch_errors(image: torch.Tensor) -> np.ndarray:
    got = image[0].permute(1, 2, 0).numpy() * 255
    want = _patch_picture().astype(np.float32)
    errors = []
    for k in range(len(PATCHES)):
        y, x = (k // 4) * 24, (k % 4) * 16
        inner = (slice(y + 4, y + 20), slice(x + 4, x + 12))  # chroma subsampling blurs the edges
        errors.append(np.abs(got[inner] - want[inner]).mean(axis=(0, 1)))
    return np.array(errors)


def test_colour_round_trip_bt709(tmp_path):
    path = tmp_path / "patches.mp4"
    with VideoWriter(path, size=(W, H), fps=Fraction(30)) as writer:
        for _ in range(3):
            writer.write(torch.from_numpy(_patch_picture()).permute(2, 0, 1).float() / 255)
    facts, audio = _streams(path)
    assert audio is None
    for key in ("colorspace", "primaries", "trc"):
        assert facts[key] == 1, key  # AVCOL_*_BT709
    assert facts["color_range"] == 1  # limited (tv)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: the index comes first
    assert _patch_errors(_frames(path)[1].image).max() < 3
    # The matrix itself, without our reader: pure red has luma 16 + 219 * 0.2126 = 63 in BT.709 (81 in BT.601).
    with av.open(str(path)) as c:
        luma = next(c.decode(video=0)).to_ndarray()[:H]  # yuv420p as one array: the Y plane comes first
    assert abs(float(luma[4:20, 4:12].mean()) - 62.6) < 1.5


@pytest.mark.parametrize("height, full", [(48, False), (720, False), (48, True)])
def test_bt601_tagged_input(tmp_path, height, full):
    """A BT.601-tagged stream decodes with BT.601 even where the height would suggest BT.709; full range too."""
    picture = np.repeat(_patch_picture(), height // H, axis=0)  # 720 lines: each patch row 15 times
    path = tmp_path / "bt601.mkv"
    # Encode with the BT.601 matrix by hand, and tag it so.
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = W, picture.shape[0], "yuv420p"
        cc = stream.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc = 6, 6, 6  # SMPTE 170M (BT.601)
        cc.color_range = 2 if full else 1  # JPEG (0-255) or MPEG (16-235)
        yuv = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
            format="yuv420p", dst_colorspace="ITU601", dst_color_range="JPEG" if full else "MPEG",
            interpolation=ACCURATE)
        for i in range(2):
            yuv.pts = i
            for packet in stream.encode(yuv):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    image = _frames(path, max_frames=1, size=(W, H))[0].image
    assert _patch_errors(image).max() < 3


def test_untagged_hd_uses_bt709(tmp_path):
    """Untagged: BT.709 from 720 lines up (the players' convention), BT.601 below."""
    for height, matrix in ((720, "ITU709"), (48, "ITU601")):
        picture = np.zeros((height, W, 3), np.uint8)
        picture[:] = (200, 40, 40)
        path = tmp_path / f"untagged{height}.mkv"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=30, options={"crf": "5"})
            stream.width, stream.height, stream.pix_fmt = W, height, "yuv420p"
            yuv = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=matrix, dst_color_range="MPEG", interpolation=ACCURATE)
            yuv.colorspace = 2  # unspecified
            for packet in [*stream.encode(yuv), *stream.encode()]:
                out.mux(packet)
        assert probe_video(path).height == height
        got = _frames(path, max_frames=1, size=(W, height))[0].image[0].mean(dim=(1, 2)) * 255
        assert torch.allclose(got, torch.tensor([200.0, 40.0, 40.0]), atol=3), (height, got)


# -- writing, timestamps, audio -----------------------------------------------------------------

def test_round_trip_keeps_rate_and_copies_audio(tmp_path):
    fps, n = Fraction(30000, 1001), 24
    seconds = float(n / fps)
    source = make_clip(tmp_path / "src.mp4", n, fps=fps, audio=_tone(seconds))
    assert probe_video(source).has_audio
    out = tmp_path / "out.mp4"
    with VideoReader(source) as reader, VideoWriter(out, size=(W, H), fps=reader.info.fps,
                                                    audio=AudioSource(source)) as writer:
        for frame in reader:
            writer.write(frame.image, frame.time)
    info = probe_video(out)
    assert (info.frame_count, info.fps, info.width, info.height, info.has_audio) == (n, fps, W, H, True)
    facts, (start, samples, codec) = _streams(out)
    assert codec == "aac" and abs(start) < 1e-3
    assert facts["times"] == pytest.approx([i / float(fps) for i in range(n)], abs=1e-4)
    assert abs(len(samples) / RATE - seconds) < 1024 / RATE  # within one AAC frame of the video
    assert _audio_packets(out) == _audio_packets(source)  # copied, not re-encoded
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left behind


def test_audio_never_outlasts_the_video(tmp_path):
    """Only the first 10 frames, audio given without an end: the copied track stops with the picture."""
    source = make_clip(tmp_path / "src.mp4", 60, audio=_tone(2.0))
    out = tmp_path / "head.mp4"
    with VideoReader(source, max_frames=10) as reader, VideoWriter(out, size=(W, H), fps=Fraction(30),
                                                                   audio=AudioSource(source)) as writer:
        for frame in reader:
            writer.write(frame.image, frame.time)
    _, (_, samples, codec) = _streams(out)
    assert codec == "aac" and abs(len(samples) / RATE - 10 / 30) < 1024 / RATE


def test_trimmed_output_reencodes_audio_in_sync(tmp_path):
    fps = Fraction(30)
    # 2 s of video; the tone starts at 0.6 s, so the 0.5 s-trimmed output must hear it at 0.1 s.
    source = make_clip(tmp_path / "src.mp4", 60, fps=fps, audio=_tone(2.0, onset=0.6))
    out = tmp_path / "trim.mkv"
    with VideoReader(source, start=0.5, max_frames=10) as reader:
        frames = list(reader)
    first = frames[0].time
    assert first == pytest.approx(0.5) and frames[0].index == 15
    audio = AudioSource(source, start=first, end=first + len(frames) / float(fps))
    with VideoWriter(out, size=(W, H), fps=fps, audio=audio, time_offset=first) as writer:
        for frame in frames:
            writer.write(frame.image, frame.time)
    facts, (start, samples, codec) = _streams(out)
    assert len(facts["times"]) == 10 and facts["times"][0] == pytest.approx(0, abs=1e-3)
    assert codec == "aac" and abs(start) < 1e-3
    assert abs(len(samples) / RATE - 10 / 30) < 1024 / RATE
    assert _onset(samples) == pytest.approx(0.1, abs=0.002)  # sample-accurate cut; the brief allows a frame


def test_variable_frame_rate_survives(tmp_path):
    times, t = [], 0.0
    for i in range(16):
        times.append(t)
        t += 1 / 30 if i % 2 else 1 / 10
    source = make_clip(tmp_path / "vfr.mp4", 16, times=times)
    info = probe_video(source)
    assert info.variable_rate
    frames = _frames(source)
    assert [f.time for f in frames] == pytest.approx(times, abs=1e-3)
    out = tmp_path / "out.mov"
    with VideoWriter(out, size=(W, H), fps=info.fps) as writer:
        for frame in frames:
            writer.write(frame.image, frame.time)
    assert _streams(out)[0]["times"] == pytest.approx(times, abs=1e-3)
    assert probe_video(out).variable_rate
    # A seek into a variable-rate clip still reports the true frame index.
    assert [f.index for f in _frames(source, start=times[7] - 1e-4, max_frames=2)] == [7, 8]


def test_png_sequence_output(tmp_path):
    target = tmp_path / "out" / "frame_%05d.png"
    with VideoWriter(target, size=(W, H), fps=Fraction(25)) as writer:
        for i in range(3):
            writer.write(torch.from_numpy(_picture(i)).permute(2, 0, 1).float() / 255)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"frame_{i:05d}.png" for i in (1, 2, 3)]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "frame_00002.png")), _picture(1))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(BrushstreamError, match="not empty"):
        VideoWriter(target, size=(W, H), fps=Fraction(25))
    (tmp_path / "empty").mkdir()
    with VideoWriter(tmp_path / "empty" / "f%d.png", size=(W, H), fps=Fraction(25)) as writer:
        writer.write(torch.zeros(1, 3, H, W))
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["f1.png"]


# -- bad input ----------------------------------------------------------------------------------

def test_bad_inputs(tmp_path):
    cases = {}
    cases["missing"] = (tmp_path / "nope.mp4", "no such file")
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.mp4", "empty file")
    # Seeded: some random draws probe as an audio-only stream ("has no video stream", also a clear error).
    (tmp_path / "garbage.mp4").write_bytes(random.Random(0).randbytes(4000))
    cases["garbage"] = (tmp_path / "garbage.mp4", "not a readable video")
    whole = make_clip(tmp_path / "whole.mp4", 30).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])  # index at the end: the header is gone
    cases["truncated"] = (tmp_path / "cut.mp4", "not a readable video")
    audio_only = tmp_path / "audio.m4a"
    with av.open(str(audio_only), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(_tone(1024 / RATE)[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = RATE, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    cases["audio only"] = (audio_only, "has no video stream")
    no_frames = tmp_path / "noframes.avi"
    with av.open(str(no_frames), "w") as out:  # a video stream that never got a frame, beside some audio
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        pcm = out.add_stream("pcm_s16le", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, 0
        for packet in [*pcm.encode(frame), *pcm.encode()]:
            out.mux(packet)
    cases["no frames"] = (no_frames, "has no frames")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("x")
    cases["no images"] = (tmp_path / "nothing", "holds no images")
    for name, (path, message) in cases.items():
        with pytest.raises(BrushstreamError, match=message) as caught:
            _frames(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value), name


def test_truncated_files_name_the_frame(tmp_path):
    noise = [np.random.default_rng(i).integers(0, 256, (H, W, 3), dtype=np.uint8) for i in range(40)]
    # Index at the front: frames decode until the cut, then the decoder fails.
    whole = make_clip(tmp_path / "fs.mp4", 40, frames=noise, container_options={"movflags": "+faststart"}).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    # Either the decoder fails at the cut or the demuxer ends there quietly (it varies with the cut point).
    with pytest.raises(BrushstreamError, match=r"cut\.mp4: (decoding failed at|the video stops at) frame \d+ .*trunc"):
        _frames(tmp_path / "cut.mp4")
    # AVI without its index: the demuxer just stops; the header still knows the length.
    whole = make_clip(tmp_path / "a.avi", 40, frames=noise, codec="mpeg4").read_bytes()
    (tmp_path / "cut.avi").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BrushstreamError, match=r"cut\.avi: the video stops at frame \d+ .* truncated"):
        _frames(tmp_path / "cut.avi")


def test_folder_changing_size_midway(tmp_path):
    for i in range(4):
        Image.fromarray(_picture(i, *((W, H) if i < 2 else (32, 32)))).save(tmp_path / f"{i}.png")
    seen = []
    with pytest.raises(BrushstreamError, match=r"frame 2 is 32x32 but the clip started at 64x48"):
        for frame in VideoReader(tmp_path):
            seen.append(frame.index)
    assert seen == [0, 1]


@pytest.mark.parametrize("target, message", [
    ("-", "standard output"),
    ("{tmp}", "is a directory"),
    ("{tmp}/out.avi", "cannot write .avi"),
    ("{tmp}/frames/f.png", "cannot write .png"),
    ("{tmp}/f%04d.jpg", "written as PNG"),
])
def test_refused_outputs(tmp_path, target, message):
    with pytest.raises(BrushstreamError, match=message):
        check_video_output(target.format(tmp=tmp_path))


def test_unwritable_folder(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # Tests may run as root, which ignores permission bits: make the folder read-only the way access() sees it.
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real_access(p, mode, **kw))
    for target in (locked / "out.mp4", locked / "frames" / "f_%04d.png"):
        with pytest.raises(BrushstreamError, match="cannot write here .*no permission"):
            check_video_output(target)


@pytest.mark.parametrize("name, how", [("full.mp4", "dev_full"), ("full.mkv", "mux"), ("out/f_%03d.png", "png")])
def test_disk_full_leaves_nothing(tmp_path, monkeypatch, name, how):
    calls = []

    def full(*args):
        calls.append(1)
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    def temp_on_dev_full(path):
        """The hidden temp name is a link to /dev/full: FFmpeg's own writes fail with ENOSPC."""
        calls.append(1)
        tmp = path.with_name(f".{path.stem}.full{path.suffix}")
        tmp.symlink_to("/dev/full")
        return tmp

    if how == "dev_full":
        if not os.path.exists("/dev/full"):
            pytest.skip("needs /dev/full")
        monkeypatch.setattr(video_writer, "_create_temp", temp_on_dev_full)
    monkeypatch.setattr(video_writer, "_mux", lambda container, packet: full())
    monkeypatch.setattr(video_writer, "_save_png", lambda rgb, path: full())
    target = tmp_path / name
    with pytest.raises(BrushstreamError, match=r"could not write the video \(No space left on device\)"), \
            VideoWriter(target, size=(W, H), fps=Fraction(30), preset="ultrafast") as writer:
        for _ in range(40):
            writer.write(torch.rand(1, 3, H, W))
    assert calls and list(tmp_path.iterdir()) == []  # no target, no temp file or folder


def test_exception_inside_with_leaves_nothing(tmp_path):
    source = make_clip(tmp_path / "src.mp4", 4, audio=_tone(0.2))
    target = tmp_path / "out.mp4"
    for exc in (RuntimeError("model failed"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), VideoWriter(target, size=(W, H), fps=Fraction(30),
                                                    audio=AudioSource(source)) as writer:
            writer.write(torch.rand(1, 3, H, W))
            raise exc
        assert sorted(p.name for p in tmp_path.iterdir()) == ["src.mp4"]


def test_reading_keeps_no_frames(tmp_path):
    path = make_clip(tmp_path / "long.mp4", 300, options={"preset": "ultrafast"})
    alive, count = [], 0
    tracemalloc.start()
    try:
        with VideoReader(path) as reader:
            for frame in reader:
                alive.append(weakref.ref(frame.image))
                count += 1
        gc.collect()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 300
    assert sum(ref() is not None for ref in alive) <= 1  # at most the last frame's tensor still referenced
    assert peak < 2_000_000  # numpy buffers for a few 64x48 frames, not 300 of them


def test_a_non_finite_frame_stops_the_video_and_leaves_nothing(tmp_path):
    path = tmp_path / "out.mp4"
    frame = torch.full((3, H, W), 0.5)
    with pytest.raises(BrushstreamError, match="out.mp4: the result holds NaN or infinite values"):
        with VideoWriter(path, size=(W, H), fps=Fraction(30)) as writer:
            writer.write(frame)
            writer.write(torch.where(torch.rand(3, H, W) < 0.01, torch.tensor(float("nan")), frame))
    assert list(tmp_path.iterdir()) == []
