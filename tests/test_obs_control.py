"""OBS control without OBS: requests, the password's sources, the Media Source settings and the command line.
host_tests/test_obs.py runs the same control against a real OBS."""
import os
import subprocess
import sys

import pytest

from brushstream.core.cli import main
from brushstream.core.errors import BrushstreamError
from brushstream.obs_filter.config import PASSWORD_VARIABLE, connection, read_config
from brushstream.obs_filter.control import ObsControl, ObsRequestError, ObsSettings, media_source_settings

from .conftest import SHARED_DATA


class FakeStylizer:
    def __init__(self):
        self.styles, self.index, self.strength = ["starry_night", "the_great_wave", "udnie"], 0, 1.0

    def labels(self):
        return list(self.styles)

    def find(self, label):
        return self.styles.index(label) if label in self.styles else None

    def select(self, index):
        self.index = index

    def step(self, delta):
        self.index = (self.index + delta) % len(self.styles)

    def set_strength(self, value):
        self.strength = min(max(value, 0.0), 1.0)

    def wanted_label(self):
        return self.styles[self.index]

    def add_style(self, style, frame=None, done=None):
        self.styles.append(style.rsplit("/", 1)[-1].split(".")[0])
        done(len(self.styles) - 1)


class Data:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_requests_switch_styles_and_strength():
    st = FakeStylizer()
    control = ObsControl(ObsSettings(scene_styles={"Intro": "udnie"}), st, None)
    control.on_custom_event(Data(brushstream="next_style"))
    assert st.index == 1
    control.on_custom_event(Data(brushstream="previous_style"))
    control.on_custom_event(Data(brushstream="previous_style"))
    assert st.index == 2
    control.on_custom_event(Data(brushstream="style", style="the_great_wave"))
    assert st.index == 1
    control.on_custom_event(Data(brushstream="style", style="0"))
    assert st.index == 0
    control.on_custom_event(Data(brushstream="strength_down"))
    control.on_custom_event(Data(brushstream="strength_down"))
    assert st.strength == pytest.approx(0.8)
    control.on_custom_event(Data(brushstream="strength", value=0.25))
    assert st.strength == pytest.approx(0.25)
    control.on_custom_event(Data(brushstream="add_style", style="/styles/mosaic.jpg"))
    assert st.index == 3 and st.labels()[3] == "mosaic"
    control.on_custom_event(Data(brushstream="style", style="0"))
    control.on_custom_event(Data(other_plugin="hello"))       # someone else's custom event: ignored
    control.on_custom_event(Data(brushstream="style", style="nope"))   # logged, not raised into OBS's thread
    assert st.index == 0
    control.on_current_program_scene_changed(Data(scene_name="Intro"))
    assert st.index == 2
    control.on_current_program_scene_changed(Data(scene_name="Unmapped"))
    assert st.index == 2
    with pytest.raises(BrushstreamError, match="unknown request"):
        control.handle("explode")


def test_requests_without_a_connection_raise():
    control = ObsControl(ObsSettings(), FakeStylizer(), None)
    with pytest.raises(ObsRequestError, match="get_version: not connected"):
        control.request("get_version")


def test_media_source_plays_the_loopback_stream_unbuffered():
    settings = media_source_settings("udp://127.0.0.1:5600?localaddr=127.0.0.1")
    assert settings["is_local_file"] is False and "localaddr=127.0.0.1" in settings["input"]
    assert settings["buffering_mb"] == 0 and settings["clear_on_media_end"] is False


def test_password_comes_from_the_environment_or_the_config_file(tmp_path, monkeypatch):
    config = tmp_path / "obs.toml"
    config.write_text('[obs]\nhost = "10.0.0.2"\nport = 4460\npassword = "from-file"\n')
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    assert connection(None, None, str(config)) == ("10.0.0.2", 4460, "from-file")
    monkeypatch.setenv(PASSWORD_VARIABLE, "from-env")
    assert connection("127.0.0.1", 4455, str(config)) == ("127.0.0.1", 4455, "from-env")
    monkeypatch.setenv("HOME", str(tmp_path))          # no default file: defaults
    monkeypatch.delenv(PASSWORD_VARIABLE)
    assert connection(None, None, None) == ("127.0.0.1", 4455, "")


def test_bad_config_files_are_one_line(tmp_path):
    with pytest.raises(BrushstreamError, match="no such config file"):
        read_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[obs\npassword=")
    with pytest.raises(BrushstreamError, match="bad.toml: unreadable config"):
        read_config(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[obs]\npasword = "x"\n')
    with pytest.raises(BrushstreamError, match="unknown keys in \\[obs\\]: pasword"):
        read_config(typo)
    port = tmp_path / "port.toml"
    port.write_text('[obs]\nport = "4455"\n')
    with pytest.raises(BrushstreamError, match="port must be"):
        connection(None, None, str(port))


def _brushstream(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "brushstream.core.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def _in_process(argv, capsys):
    """The command line's exit code and stderr, run in this process (argparse's own errors exit)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _free_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_streams_a_clip_without_obs_and_reports_figures():
    port = _free_udp_port()
    run = _brushstream("obs", "--source", str(SHARED_DATA / "video" / "sam2_dog.mp4"), "--no-obs", "--size", "320x180",
                       "--style", "the_great_wave", "--duration", "3", "--stats-every", "1",
                       "--stream-port", str(port))
    assert run.returncode == 0, run.stderr
    assert "sam2_dog.mp4 -> reconet -> stream udp://127.0.0.1" in run.stderr
    done = [line for line in run.stderr.splitlines() if "done:" in line][-1]
    fps = float(done.split("done: ")[1].split(" fps")[0])
    assert fps > 0 and "latency" in done and "dropped" in done     # speed is bench/obs_live.py's, not a test's


@pytest.mark.parametrize("args,message", [
    (["--size", "640x361"], "must be even"),
    (["--size", "big"], "WIDTHxHEIGHT"),
    (["--method", "lst", "--runtime", "onnx"], "--runtime does not apply to --method lst"),
    (["--method", "gatys"], "invalid choice: 'gatys'"),
    (["--scene-style", "Intro=starry_night", "--no-obs"], "need OBS"),
    (["--scene-style", "Intro"], "SCENE=STYLE"),
    (["--style", "mona_lisa", "--no-obs"], "mona_lisa: no reconet network paints this style"),
    (["--fps", "0"], "--fps must be"),
    (["--source", "camera:7", "--no-obs"], "camera:7: cannot open the camera"),
    (["--source", "obs:Cam", "--obs-port", "1"], "obs:Cam: obs-websocket at 127.0.0.1:1: cannot connect"),
])
def test_cli_bad_arguments_are_one_line(args, message, capsys):
    code, err = _in_process(["obs", "--source", str(SHARED_DATA / "video" / "sam2_dog.mp4"), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_the_password_is_never_a_command_line_option(capsys):
    code, err = _in_process(["obs", "--source", "camera:0", "--obs-password", "secret"], capsys)
    assert code == 2 and "unrecognized arguments" in err


def test_obs_unreachable_is_retried_while_streaming():
    run = _brushstream("obs", "--source", str(SHARED_DATA / "video" / "sam2_dog.mp4"), "--size", "320x180",
                       "--obs-port", "1", "--duration", "2", "--stream-port", str(_free_udp_port()))
    assert run.returncode == 0, run.stderr
    assert "cannot connect" in run.stderr and "retrying" in run.stderr and "done:" in run.stderr


def _built(*args):
    from brushstream.core.cli import build_parser
    from brushstream.obs_filter.cli import build_filter
    parsed = build_parser().parse_args(["obs", "--source", str(SHARED_DATA / "video" / "sam2_dog.mp4"),
                                        "--size", "320x180", "--stream-port", str(_free_udp_port()), *args])
    live = build_filter(parsed)
    live.pipeline.source.close()
    live.pipeline.sink.close()
    return live


def test_the_command_line_reaches_every_part(monkeypatch):
    monkeypatch.setenv("OBS_WEBSOCKET_PASSWORD", "pw")
    live = _built("--style", "the_great_wave", "--overlay", "--stamp", "--pts", "clock", "--flush-copies", "3",
                  "--obs-input", "Live style", "--obs-scene", "Camera", "--scene-style", "Camera=the_great_wave",
                  "--obs-port", "4460", "--strength", "0.6")
    p = live.pipeline
    assert p.overlay and p.stamp_frames
    assert p.sink.timestamps == "clock" and p.sink.flush_copies == 3 and p.sink.size == (320, 180)
    assert live.stream_url == p.sink.player_url()
    assert (live.obs.input_name, live.obs.scene, live.obs.scene_styles) == ("Live style", "Camera",
                                                                            {"Camera": "the_great_wave"})
    assert (live.obs.port, live.obs.password) == (4460, "pw")
    assert p.stylizer.labels() == ["the_great_wave"] and p.stylizer.strength == 0.6
    assert p.stylizer.current.model.norm == "frame"                # ReCoNet's live default
    defaults = _built("--no-obs")
    assert defaults.obs is None and defaults.pipeline.sink.timestamps == "asap"
    assert not defaults.pipeline.overlay and not defaults.pipeline.stamp_frames
    assert _built("--no-obs", "--norm", "stream").pipeline.stylizer.current.model.norm == "stream"


def test_lst_live_defaults_and_its_options():
    live = _built("--no-obs", "--method", "lst", "--style", str(SHARED_DATA / "styles" / "starry_night.jpg"),
                  "--temporal-strength", "0.3")
    slot = live.pipeline.stylizer.current
    assert slot.model.work_size == 256 and slot.state.strength == 0.3
    assert _built("--no-obs", "--method", "lst", "--work-size", "384").pipeline.stylizer.current.model.work_size == 384


def test_the_fast_adain_path_from_the_command_line():
    live = _built("--no-obs", "--method", "adain", "--style", str(SHARED_DATA / "styles" / "candy.jpg"))
    model = live.pipeline.stylizer.current.model
    assert type(model.encoder).__name__ == "StudentEncoder" and model.work_size == 256    # the fast pair
    assert live.pipeline.stylizer.labels() == ["candy"]
    deeper = _built("--no-obs", "--method", "adain", "--level", "relu3_1", "--style",
                    str(SHARED_DATA / "styles" / "candy.jpg")).pipeline.stylizer.current.model
    assert type(deeper.encoder).__name__ != "StudentEncoder" and deeper.work_size == 256
