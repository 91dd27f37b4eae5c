"""Run a real OBS Studio headless for integration tests and benches: Debian's obs-studio under Xvfb.

ObsStudio seeds a throw-away config folder (global.ini with the websocket on, a password and a free port; a
scene collection with two scenes, cuts instead of fades, and the Brushstream hotkeys script loaded), starts Xvfb
and OBS, and waits for obs-websocket's "Server started successfully" line. ``kill()`` and ``start()`` restart OBS
on the same folder (the reconnect test); ``stop()`` ends it with SIGINT, ignoring OBS's exit code.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HOTKEYS_SCRIPT = REPO / "obs_filter" / "obs_hotkeys.lua"
PASSWORD = "brushstream-test-password"
SCENES = ("Scene", "Scene 2")
START_TIMEOUT_S = 60


def missing_obs() -> str | None:
    """Why OBS cannot run here, or None."""
    for tool in ("obs", "Xvfb"):
        if shutil.which(tool) is None:
            return (f"needs {tool}: apt-get install -y --no-install-recommends obs-studio obs-plugins xvfb "
                    f"(.ci/run does; it could not here)")
    return None


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scene(name: str) -> dict:
    return {"id": "scene", "versioned_id": "scene", "name": name, "settings": {"items": [], "id_counter": 0}}


class ObsStudio:
    def __init__(self, preview: bool = False, screen: str = "1280x720x24"):
        self.preview, self.screen = preview, screen
        self.port = free_port()
        self.password = PASSWORD
        self.home = Path(tempfile.mkdtemp(prefix="brushstream-obs-"))
        self.log_path = self.home / "obs.log"
        self._xvfb = self._obs = None
        self.display = None
        self.starts = 0
        self._seed()

    def _seed(self) -> None:
        config = self.home / "obs-studio"
        (config / "basic" / "scenes").mkdir(parents=True)
        (config / "global.ini").write_text(
            "[General]\nFirstRun=true\n\n"
            f"[BasicWindow]\nPreviewEnabled={'true' if self.preview else 'false'}\n\n"
            "[Basic]\nProfile=Untitled\nProfileDir=Untitled\nSceneCollection=Untitled\nSceneCollectionFile=Untitled\n\n"
            "[OBSWebSocket]\nFirstLoad=false\nServerEnabled=true\n"
            f"ServerPort={self.port}\nAuthRequired=true\nServerPassword={self.password}\n")
        collection = {"name": "Untitled", "current_scene": SCENES[0], "current_program_scene": SCENES[0],
                      "current_transition": "Cut", "transition_duration": 0,
                      "scene_order": [{"name": s} for s in SCENES], "sources": [_scene(s) for s in SCENES],
                      "modules": {"scripts-tool": [{"path": str(HOTKEYS_SCRIPT), "settings": {}}]}}
        (config / "basic" / "scenes" / "Untitled.json").write_text(json.dumps(collection))

    # -- life ---------------------------------------------------------------------------------------------------
    def _start_xvfb(self) -> None:
        read, write = os.pipe()
        self._xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", self.screen, "-nolisten",
                                       "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def start(self) -> "ObsStudio":
        if self._xvfb is None:
            self._start_xvfb()
        # opencv-python points Qt at its own plugins when imported (QT_QPA_PLATFORM_PLUGIN_PATH): OBS must not see that.
        env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")}
        env.update(DISPLAY=self.display, XDG_CONFIG_HOME=str(self.home), LIBGL_ALWAYS_SOFTWARE="1")
        log = open(self.log_path, "a")
        offset = self.log_path.stat().st_size
        self._obs = subprocess.Popen(["obs", "--multi", "--disable-missing-files-check", "--disable-updater"],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.home,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")[offset:]
            if "Server started successfully" in text:
                self.starts += 1
                return self
            if self._obs.poll() is not None:
                raise RuntimeError(f"OBS exited at start-up (code {self._obs.returncode}); log: {self.log_path}")
            time.sleep(0.2)
        raise RuntimeError(f"OBS's websocket did not start in {START_TIMEOUT_S} s; log: {self.log_path}")

    def kill(self) -> None:
        """Kill OBS as a crash would (no clean shutdown); Xvfb stays."""
        if self._obs is not None and self._obs.poll() is None:
            os.killpg(self._obs.pid, signal.SIGKILL)
            self._obs.wait(10)

    def stop(self) -> None:
        if self._obs is not None and self._obs.poll() is None:
            self._obs.send_signal(signal.SIGINT)
            try:
                self._obs.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self._obs.pid, signal.SIGKILL)
                self._obs.wait(10)
        if self._xvfb is not None:
            self._xvfb.terminate()
            self._xvfb.wait(10)
            self._xvfb = None

    def __enter__(self) -> "ObsStudio":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- talking to it --------------------------------------------------------------------------------------------
    def client(self):
        import obsws_python as obsws
        return obsws.ReqClient(host="127.0.0.1", port=self.port, password=self.password, timeout=5)

    def filter_env(self) -> dict:
        """Environment for a `brushstream obs` subprocess talking to this OBS."""
        return {**os.environ, "OBS_WEBSOCKET_PASSWORD": self.password}

    def grab_screen(self) -> "np.ndarray":
        from PIL import ImageGrab
        return np.asarray(ImageGrab.grab(xdisplay=self.display).convert("RGB"))


def source_screenshot(client, name: str, width: int, height: int) -> np.ndarray:
    """GetSourceScreenshot of ``name`` as RGB uint8, PNG so the check sees OBS's pixels, not JPEG's."""
    from PIL import Image
    shot = client.get_source_screenshot(name, "png", width, height, -1)
    data = base64.b64decode(shot.image_data.split(",", 1)[-1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
