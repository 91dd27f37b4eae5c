"""The OBS filter against a real OBS (Debian's obs-studio under Xvfb, host_tests/obs_host.py).

One filter process streams a still photo (so every expected picture is known) with a frame counter stamped in;
OBS plays it through the Media Source the filter creates. Checked through obs-websocket screenshots: OBS shows the
stylized photo, not the photo; the counter advances; a scene switch, a hotkey and a request each change the style;
OBS killed and restarted mid-stream gets the stream back without restarting the filter. Figures go to
host_tests/results/obs_runs.json.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from obs_host import SCENES, ObsStudio, free_port, missing_obs, source_screenshot

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
SIZE = (320, 180)
STYLES = ("starry_night", "the_great_wave")
INPUT = "Brushstream"
STAMP_ROWS = 16            # the counter's band at the top (block size 8 px at 320 wide, with margin)
LATER_SCENE = "Made later"   # mapped on the command line, created in OBS while the filter runs
SCENE_STYLES = {SCENES[0]: STYLES[0], SCENES[1]: STYLES[1], LATER_SCENE: STYLES[1]}
FIGURES: dict = {}


@pytest.fixture(scope="module")
def obs():
    reason = missing_obs()
    if reason:
        pytest.skip(reason)
    if not DATA.is_dir():
        pytest.skip(f"needs {DATA} (test inputs beside the repository), which is absent")
    with ObsStudio() as studio:
        yield studio
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "obs_runs.json").write_text(json.dumps(FIGURES, indent=2) + "\n")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from PIL import Image

    from brushstream.obs_filter.sources import fit
    return fit(np.asarray(Image.open(DATA / "content_eval" / "skimage_chelsea.jpg").convert("RGB")), SIZE)


@pytest.fixture(scope="module")
def still_clip(photo, tmp_path_factory) -> Path:
    """Three seconds of the photo at 25 fps, nearly lossless: the filter loops it."""
    import av
    path = tmp_path_factory.mktemp("obs") / "still.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv444p"
        stream.codec_context.options = {"crf": "4"}
        for _ in range(75):
            for packet in stream.encode(av.VideoFrame.from_ndarray(photo, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def expected(photo) -> dict[str, np.ndarray]:
    """What each style makes of the photo, computed here with the same networks."""
    from brushstream.core.api import load
    from brushstream.core.io.image import from_uint8, to_uint8
    out = {"photo": photo}
    for style in STYLES:
        model = load("reconet", model=f"reconet_rt_{style}", norm="frame")
        out[style] = to_uint8(model.stylize(from_uint8(photo), model.encode_style(0)))
    return out


class Filter:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc, self.log = proc, log

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float, after: int = 0) -> float:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if needle in self.text()[after:]:
                return time.monotonic() - began
            assert self.proc.poll() is None, f"the filter exited:\n{self.text()[-2000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {needle!r} in the filter's log after {timeout} s:\n{self.text()[-2000:]}")

    def stop(self) -> None:
        """Ctrl-C, as a streamer stops it; killed only if it does not end within 20 s."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def frames_sent(self) -> int:
        lines = [line for line in self.text().splitlines() if " frames" in line and "fps |" in line]
        return int(lines[-1].rsplit("|", 1)[1].split()[0]) if lines else 0


@pytest.fixture(scope="module")
def live_filter(obs, still_clip, tmp_path_factory):
    log = tmp_path_factory.mktemp("filter") / "filter.log"
    args = [sys.executable, "-m", "brushstream.core.cli", "obs", "--source", str(still_clip), "--method", "reconet",
            "--norm", "frame", "--size", f"{SIZE[0]}x{SIZE[1]}", "--stamp", "--stats-every", "1",
            "--obs-port", str(obs.port), "--stream-port", str(free_port(__import__("socket").SOCK_DGRAM)),
            *[arg for scene, style in SCENE_STYLES.items() for arg in ("--scene-style", f"{scene}={style}")]]
    for style in STYLES:
        args += ["--style", style]
    running = _start_filter(obs, args, log)
    try:
        running.wait_for("OBS: connected", 90)
        yield running
    finally:
        running.stop()


def _start_filter(obs, args: list[str], log: Path) -> Filter:
    """``brushstream obs ARGS`` as its own process against this OBS, its output in ``log``."""
    with open(log, "w") as sink:
        proc = subprocess.Popen(args, env=obs.filter_env(), stderr=sink, stdout=sink)
    return Filter(proc, log)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a[STAMP_ROWS:].astype(np.float32) - b[STAMP_ROWS:]).mean())


def _shots(obs, count: int, gap: float, timeout: float = 20.0, source: str = INPUT) -> list[tuple[int, np.ndarray]]:
    """(counter, picture) of the Media Source, from the first readable one on."""
    from brushstream.obs_filter.stamp import read_stamp
    client, out, began = obs.client(), [], time.monotonic()
    while len(out) < count:
        assert time.monotonic() - began < timeout, f"OBS showed no stamped frames in {timeout} s"
        shot = source_screenshot(client, source, *SIZE)
        counter = read_stamp(shot, SIZE[0])
        if counter is not None and (not out or counter != out[-1][0]):
            out.append((counter, shot))
            time.sleep(gap)
        else:
            time.sleep(0.1)
    client.disconnect()
    return out


def _style_shown(obs, expected, timeout: float = 5.0) -> tuple[str, float]:
    """Which expected picture OBS shows (nearest of photo and styles), waiting until it is stable."""
    began, last = time.monotonic(), None
    while time.monotonic() - began < timeout:
        (_, shot), = _shots(obs, 1, 0)
        distances = {name: _distance(shot, picture) for name, picture in expected.items()}
        nearest = min(distances, key=distances.get)
        if nearest == last:
            return nearest, distances[nearest]
        last = nearest
        time.sleep(0.3)
    return last, distances[last]


def _wait_style(obs, expected, wanted: str, timeout: float = 6.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        shown, _ = _style_shown(obs, expected, 2.0)
        if shown == wanted:
            return time.monotonic() - began
    raise AssertionError(f"OBS still shows {shown}, not {wanted}, after {timeout} s")


def test_obs_shows_stylized_frames_that_advance(obs, live_filter, expected):
    shots = _shots(obs, 5, 0.3)
    counters = [c for c, _ in shots]
    assert counters == sorted(counters) and len(set(counters)) == 5, counters
    for _, shot in shots:
        to_style = _distance(shot, expected[STYLES[0]])
        assert to_style < 0.4 * _distance(shot, expected["photo"]), "OBS shows the raw photo, not the stylized one"
        assert to_style < 0.6 * _distance(shot, expected[STYLES[1]])
    FIGURES["stylized_distance_to_expected"] = round(_distance(shots[-1][1], expected[STYLES[0]]), 2)
    FIGURES["stylized_distance_to_photo"] = round(_distance(shots[-1][1], expected["photo"]), 2)
    FIGURES["counter_advance_per_s"] = round((counters[-1] - counters[0]) / (0.3 * 4 + 0.1), 1)
    RESULTS.mkdir(exist_ok=True)
    from PIL import Image
    Image.fromarray(shots[-1][1]).save(RESULTS / "obs_source.png")


def test_the_media_source_is_in_both_mapped_scenes(obs, live_filter):
    client = obs.client()
    for scene in SCENES:
        assert client.get_scene_item_id(scene, INPUT).scene_item_id > 0
    settings = client.get_input_settings(INPUT).input_settings
    assert "localaddr=127.0.0.1" in settings["input"] and settings["buffering_mb"] == 0
    client.disconnect()


def test_a_scene_switch_switches_the_style(obs, live_filter, expected):
    client = obs.client()
    client.set_current_program_scene(SCENES[1])
    FIGURES["scene_switch_to_new_style_s"] = round(_wait_style(obs, expected, STYLES[1]), 2)
    client.set_current_program_scene(SCENES[0])
    _wait_style(obs, expected, STYLES[0])
    client.disconnect()


def test_a_mapped_scene_made_while_streaming_gets_the_source_and_its_style(obs, live_filter, expected):
    client = obs.client()
    client.create_scene(LATER_SCENE)
    client.set_current_program_scene(LATER_SCENE)
    _wait_style(obs, expected, STYLES[1])
    assert client.get_scene_item_id(LATER_SCENE, INPUT).scene_item_id > 0
    client.set_current_program_scene(SCENES[0])
    _wait_style(obs, expected, STYLES[0])
    client.disconnect()


def test_hotkeys_and_requests_switch_the_style(obs, live_filter, expected):
    client = obs.client()
    client.trigger_hot_key_by_name("brushstream.next_style")      # through the Lua script inside OBS
    FIGURES["hotkey_to_new_style_s"] = round(_wait_style(obs, expected, STYLES[1]), 2)
    client.broadcast_custom_event({"eventData": {"brushstream": "style", "style": STYLES[0]}})
    _wait_style(obs, expected, STYLES[0])
    client.trigger_hot_key_by_name("brushstream.strength_down")
    client.broadcast_custom_event({"eventData": {"brushstream": "strength", "value": 0.0}})
    _wait_style(obs, expected, "photo")                            # strength 0 shows the photo itself
    client.broadcast_custom_event({"eventData": {"brushstream": "strength", "value": 1.0}})
    _wait_style(obs, expected, STYLES[0])
    client.disconnect()


def test_failed_requests_raise_one_line(obs):
    from brushstream.core.errors import BrushstreamError
    from brushstream.obs_filter.control import ObsControl, ObsRequestError, ObsSettings, connect_client

    control = ObsControl(ObsSettings(port=obs.port, password=obs.password, scene="No such scene"), None,
                         "udp://127.0.0.1:9?localaddr=127.0.0.1")
    control._client = connect_client("127.0.0.1", obs.port, obs.password)
    with pytest.raises(ObsRequestError, match="scene 'No such scene' does not exist"):
        control.setup_media_source()
    with pytest.raises(ObsRequestError, match="SetCurrentProgramScene failed \\(code 600"):
        control.request("set_current_program_scene", name="No such scene")
    control._client.disconnect()
    with pytest.raises(BrushstreamError, match="check OBS_WEBSOCKET_PASSWORD"):
        connect_client("127.0.0.1", obs.port, "wrong password")


def test_obs_killed_and_restarted_gets_the_stream_back(obs, live_filter, expected):
    before = live_filter.frames_sent()
    mark = len(live_filter.text())
    obs.kill()
    live_filter.wait_for("connection lost", 15, after=mark)
    time.sleep(2)
    assert live_filter.frames_sent() > before + 20        # the filter kept streaming while OBS was gone
    began = time.monotonic()
    obs.start()
    FIGURES["reconnect_after_obs_start_s"] = round(live_filter.wait_for("(again)", 30, after=mark), 2)
    shots = _shots(obs, 3, 0.3, timeout=30)
    FIGURES["picture_after_obs_start_s"] = round(time.monotonic() - began, 2)
    counters = [c for c, _ in shots]
    assert counters == sorted(counters) and len(set(counters)) == 3
    # OBS comes back in whichever scene its last autosave recorded; the filter applies that scene's style.
    client = obs.client()
    scene = client.get_current_program_scene().current_program_scene_name
    client.disconnect()
    style = SCENE_STYLES[scene]
    assert _distance(shots[-1][1], expected[style]) < 0.4 * _distance(shots[-1][1], expected["photo"])
    _wait_style(obs, expected, style)
    assert live_filter.proc.poll() is None                # never restarted


def test_the_fast_adain_path_streams_a_painting_into_obs(obs, still_clip, photo, tmp_path):
    """Live arbitrary style: any painting (here one held out of all training), AdaIN's live settings (the
    distilled pair at 256 px), into a second Media Source beside the first filter's."""
    from brushstream.core.api import load, style_for
    from brushstream.core.io.image import from_uint8, to_uint8
    from brushstream.core.methods import get

    painting = DATA / "styles" / "candy.jpg"
    model = load("adain", **get("adain").live_options)
    want = to_uint8(model.stylize(from_uint8(photo), model.encode_style(style_for(model, [str(painting)]))))
    source, log = "Brushstream AdaIN", tmp_path / "adain.log"
    args = [sys.executable, "-m", "brushstream.core.cli", "obs", "--source", str(still_clip), "--method", "adain",
            "--style", str(painting), "--size", f"{SIZE[0]}x{SIZE[1]}", "--stamp", "--stats-every", "1",
            "--obs-input", source, "--obs-port", str(obs.port),
            "--stream-port", str(free_port(__import__("socket").SOCK_DGRAM))]
    adain_filter = _start_filter(obs, args, log)
    try:
        adain_filter.wait_for("OBS: connected", 90)
        shots = _shots(obs, 3, 0.3, timeout=40, source=source)
        counters = [c for c, _ in shots]
        assert counters == sorted(counters) and len(set(counters)) == 3, counters
        shown = shots[-1][1]
        FIGURES["adain_live_distance_to_expected"] = round(_distance(shown, want), 2)
        FIGURES["adain_live_distance_to_photo"] = round(_distance(shown, photo), 2)
        assert _distance(shown, want) < 0.4 * _distance(shown, photo), "OBS shows the photo, not the painting's style"
    finally:
        adain_filter.stop()
        client = obs.client()
        try:
            client.remove_input(source)
        except Exception:   # already gone with OBS: nothing to clean up
            pass
        client.disconnect()


def test_an_obs_source_can_be_the_input(obs, photo, tmp_path):
    """The low-rate fallback source: any OBS source, pulled as screenshots."""
    from PIL import Image

    from brushstream.core.errors import BrushstreamError
    from brushstream.obs_filter.control import connect_client
    from brushstream.obs_filter.sources import open_source

    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    client = obs.client()
    client.create_input(SCENES[1], "Photo", "image_source", {"file": str(path)}, False)
    try:
        source = open_source("obs:Photo", SIZE, 30, lambda: connect_client("127.0.0.1", obs.port, obs.password))
        frames = [source.read() for _ in range(3)]
        assert source.fps == 10.0
        assert all(np.abs(f.astype(int) - photo).mean() < 6 for f in frames)
        source.close()
        with pytest.raises(BrushstreamError, match="obs:No such source: screenshot failed"):
            open_source("obs:No such source", SIZE, 30, lambda: connect_client("127.0.0.1", obs.port, obs.password))
    finally:
        client.remove_input("Photo")
        client.disconnect()
