"""Run the node pack inside a real ComfyUI (the pinned snapshot in ../shared/comfyui) for integration tests.

ensure_venv() builds ComfyUI's own venv once and caches it; ComfyServer starts a server on a loopback port with a
throw-away base directory, the repository linked in as custom_nodes/brushstream, and a websocket listener that
records every event. Only this test process needs `requests` and `websocket-client`; the server runs in the venv.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import tomllib

from brushstream.core.io.atomic import atomic_path

REPO = Path(__file__).resolve().parents[1]
# As in tests/: shared/ beside the repository; BRUSHSTREAM_SHARED points elsewhere (e.g. to prove the skips).
SHARED = Path(os.environ.get("BRUSHSTREAM_SHARED") or REPO.parent / "shared")
COMFYUI = SHARED / "comfyui"
DATA = SHARED / "data"
WEIGHTS = SHARED / "weights"

TORCH_PINS = ("torch==2.14.1", "torchvision==0.29.1")
# torchaudio has no build for the pinned torch: requiring it would make pip replace torch (PINNED.md).
SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}
# ComfyUI 0.3.64 imports requests at start-up (app/frontend_management.py) without listing it in requirements.txt.
SERVER_EXTRAS = ("requests",)

# Test inputs, named as the example workflows expect them. chelsea is CC0 and small (451x300); carphone is the
# cheapest clip in pixels x frames (176x144, 120 frames), so a video workflow stays short on a CPU.
INPUTS = {
    "content.jpg": DATA / "content_eval" / "skimage_chelsea.jpg",
    "style.jpg": DATA / "styles" / "starry_night.jpg",
    "clip.mp4": DATA / "video" / "carphone_qcif.mp4",
}

PACK_DIR_NAME = "brushstream"
RESULTS = Path(__file__).resolve().parent / "results"
RUNS_JSON = RESULTS / "comfyui_runs.json"
SERVER_LOG = RESULTS / "comfyui_server.log"   # kept after the session (ignored by git: *.log)
BUILD_STEP_TIMEOUT_S = 1800


def cache_root() -> Path:
    return Path(os.environ.get("BRUSHSTREAM_CACHE") or Path.home() / ".cache" / "brushstream")


def pack_dependencies(repo: Path = REPO) -> list[str]:
    """What the pack imports at runtime: [project].dependencies of the repository's pyproject.toml."""
    with open(repo / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def comfyui_requirements(comfyui: Path = COMFYUI) -> list[str]:
    """ComfyUI's requirements.txt without torch/torchvision/torchaudio (torch comes from TORCH_PINS)."""
    kept = []
    for line in (comfyui / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = re.match(r"[A-Za-z0-9_.\-]+", line)
        if name and name.group(0).lower().replace("_", "-") in SKIPPED_REQUIREMENTS:
            continue
        kept.append(line)
    return kept


def venv_key(comfyui: Path = COMFYUI, repo: Path = REPO) -> str:
    h = hashlib.sha256()
    h.update((comfyui / "requirements.txt").read_bytes())
    h.update("\n".join(pack_dependencies(repo)).encode())
    h.update("\n".join(TORCH_PINS + SERVER_EXTRAS).encode())
    h.update(f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}.{sys.version_info[2]}".encode())
    return h.hexdigest()[:12]


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(comfyui: Path = COMFYUI, repo: Path = REPO) -> Path:
    """The cached ComfyUI venv, built on first use (~4 min, ~6 GB). Returns the venv folder.

    It is built in a temporary sibling folder and renamed only once complete, so an interrupted build is never
    reused. Only bin/python is ever run from it (never console scripts, whose shebangs name the build folder),
    which is why renaming a finished venv is safe.
    """
    cache = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    key = venv_key(comfyui, repo)
    final = cache / f"comfyui-venv-{key}"
    log = cache / f"comfyui-venv-{key}.build.log"
    if venv_python(final).exists():
        return final
    with open(cache / f"comfyui-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # a second test session waits for the first one's build
        if venv_python(final).exists():
            return final
        for stale in cache.glob(f"comfyui-venv-{key}.building-*"):   # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        building = Path(tempfile.mkdtemp(prefix=f"comfyui-venv-{key}.building-", dir=cache))
        try:
            _build(building, comfyui, repo, log)
            os.rename(building, final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return final


def _build(venv: Path, comfyui: Path, repo: Path, log: Path) -> None:
    constraints = venv / "constraints.txt"
    requirements = venv / "comfyui-requirements.txt"
    py = str(venv_python(venv))
    pip = [py, "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
    steps = [
        ("create venv", [sys.executable, "-m", "venv", str(venv)]),
        ("install torch", pip + list(TORCH_PINS)),
        # One resolve for ComfyUI's and the pack's requirements, so neither half undoes the other; the
        # constraint file keeps pip from replacing torch for any of them.
        ("install ComfyUI requirements, its unlisted imports and pack dependencies",
         pip + ["-c", str(constraints), "-r", str(requirements)]
         + list(SERVER_EXTRAS) + pack_dependencies(repo)),
        ("record installed packages", [py, "-m", "pip", "freeze", "--all"]),
    ]
    constraints.write_text("\n".join(TORCH_PINS) + "\n")   # the build folder exists already (mkdtemp)
    requirements.write_text("\n".join(comfyui_requirements(comfyui)) + "\n")
    t0 = time.monotonic()
    with open(log, "w") as out:
        out.write(f"# ComfyUI venv for {comfyui} and pack {repo}, built in {venv}\n")
        for name, cmd in steps:
            out.write(f"\n## {name}: {' '.join(cmd)}\n")
            out.flush()
            try:
                rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=BUILD_STEP_TIMEOUT_S).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            if rc != 0:
                raise RuntimeError(f"ComfyUI venv build failed at '{name}' (exit {rc}); log: {log}")
        out.write(f"\n# built in {time.monotonic() - t0:.0f} s\n")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def video_frame_count(path: Path) -> int:
    """Frames decoded from a video file (container frame counts are not always filled in)."""
    import av
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


class ComfyServer:
    """A ComfyUI server for one test session: `with ComfyServer() as comfy: comfy.queue(prompt)`."""

    def __init__(self, comfyui: Path = COMFYUI, repo: Path = REPO, log_path: Path | None = None,
                 startup_timeout: float = 120.0, keep_dir: bool | None = None) -> None:
        self.comfyui = comfyui
        self.repo = repo
        self.startup_timeout = startup_timeout
        self.keep_dir = bool(os.environ.get("BRUSHSTREAM_KEEP_COMFY_DIR")) if keep_dir is None else keep_dir
        self._log_path_arg = log_path
        self.base: Path | None = None
        self.log_path: Path | None = None
        self.port = 0
        self.client_id = uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None
        self.events: list[dict[str, Any]] = []
        self._events_cond = threading.Condition()
        self._ws = None
        self._ws_thread: threading.Thread | None = None
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> "ComfyServer":
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _weights_folder(self) -> Path:
        """The shared weights plus the training photos' content set, packed from shared/data as its manifest recipe
        says: the Train node's default (no folder given) then finds, verifies and unpacks it as on a user's machine
        after a download."""
        from brushstream.core.hub.weights import load_manifest
        from brushstream.core.train.content_sets import DEFAULT_CONTENT_SET, pack

        folder = self.base / "weights"
        folder.mkdir()
        for f in WEIGHTS.iterdir():
            (folder / f.name).symlink_to(f)
        pack(DATA / "content", folder / load_manifest()[DEFAULT_CONTENT_SET].file)
        return folder

    def _start(self) -> None:
        import requests
        python = venv_python(ensure_venv(self.comfyui, self.repo))
        self.base = Path(tempfile.mkdtemp(prefix="comfyui-host-"))
        for sub in ("custom_nodes", "input", "output"):
            (self.base / sub).mkdir()
        (self.base / "custom_nodes" / PACK_DIR_NAME).symlink_to(self.repo, target_is_directory=True)
        for name, src in INPUTS.items():
            if not src.is_file():
                raise FileNotFoundError(f"test input {name} needs {src}, which is absent")
            shutil.copyfile(src, self.base / "input" / name)
        self.log_path = self._log_path_arg or self.base / "server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cmd = [str(python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--disable-auto-launch", "--dont-print-server", "--disable-api-nodes",
               "--base-directory", str(self.base)]
        # The log is read while the server runs. Weights as in tests/: pretrained ones from shared/weights, the
        # Hub offline, a throw-away HF cache (never the user's), so no run reaches the internet.
        env = dict(os.environ, PYTHONUNBUFFERED="1", BRUSHSTREAM_WEIGHTS_DIR=str(self._weights_folder()),
                   HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(self.base / "hf_cache"), HF_HUB_DISABLE_TELEMETRY="1",
                   BRUSHSTREAM_CACHE=str(self.base / "brushstream_cache"))
        with open(self.log_path, "w") as log:
            log.write(f"# {' '.join(cmd)}  (cwd {self.comfyui})\n")
            log.flush()
            self.proc = subprocess.Popen(cmd, cwd=self.comfyui, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} before answering /system_stats; "
                                   f"log {self.log_path}: {self.log_tail()}")
            try:
                if requests.get(self.url("/system_stats"), timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ComfyUI did not answer /system_stats within {self.startup_timeout:.0f} s; "
                                   f"log {self.log_path}: {self.log_tail()}")
            time.sleep(0.25)
        self._connect_ws()

    def _stop(self) -> None:
        self._closing = True
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
        if self._ws_thread is not None:
            self._ws_thread.join(timeout=5)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)   # ComfyUI's own shutdown path; kill only if it hangs
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.base is not None and not self.keep_dir:
            shutil.rmtree(self.base, ignore_errors=True)

    # --- websocket -----------------------------------------------------------------------------------------
    def _connect_ws(self) -> None:
        import websocket
        ws = websocket.WebSocket()
        ws.connect(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}", timeout=10)
        ws.settimeout(None)   # the reader blocks; close() from _stop() ends it
        self._ws = ws
        self._ws_thread = threading.Thread(target=self._read_ws, name="comfyui-ws", daemon=True)
        self._ws_thread.start()

    def _read_ws(self) -> None:
        import websocket
        while not self._closing:
            try:
                opcode, data = self._ws.recv_data()
            except (websocket.WebSocketException, OSError):
                break
            now = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                try:
                    msg = json.loads(data)
                except ValueError:
                    msg = {"type": "unparsed", "data": data.decode(errors="replace")}
                event = {"t": now, "type": msg.get("type"), "data": msg.get("data")}
            elif opcode == websocket.ABNF.OPCODE_BINARY:
                # ComfyUI's binary frames start with a 4-byte big-endian event type (1 = preview image, ...)
                kind = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
                event = {"t": now, "type": "binary", "binary_type": kind, "size": len(data)}
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            else:
                continue
            with self._events_cond:
                self.events.append(event)
                self._events_cond.notify_all()

    def events_snapshot(self) -> list[dict[str, Any]]:
        with self._events_cond:
            return list(self.events)

    def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float, start: int = 0
                   ) -> dict[str, Any] | None:
        """The first recorded event (from index `start`) matching predicate, waiting up to timeout; else None."""
        deadline = time.monotonic() + timeout
        with self._events_cond:
            i = start
            while True:
                while i < len(self.events):
                    if predicate(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._events_cond.wait(left)

    def prompt_events(self, prompt_id: str, type_: str | None = None) -> list[dict[str, Any]]:
        """Recorded JSON events that name prompt_id (optionally of one type)."""
        return [e for e in self.events_snapshot()
                if isinstance(e.get("data"), dict) and e["data"].get("prompt_id") == prompt_id
                and (type_ is None or e["type"] == type_)]

    def prompt_window(self, prompt_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Every event from prompt_id's execution_start to its end (success, error or interrupted), binary
        previews included (they name no prompt). /history can answer before the end event is read, hence timeout."""
        def names(e: dict[str, Any], types: tuple[str, ...]) -> bool:
            return e["type"] in types and isinstance(e.get("data"), dict) and e["data"].get("prompt_id") == prompt_id
        end = self.wait_event(lambda e: names(e, ("execution_success", "execution_error", "execution_interrupted")),
                              timeout)
        events = self.events_snapshot()
        first = next((i for i, e in enumerate(events) if names(e, ("execution_start",))), None)
        if first is None:
            return []
        last = events.index(end) if end is not None else len(events) - 1
        return events[first:last + 1]

    # --- HTTP ----------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def output_dir(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "output"

    @property
    def input_dir(self) -> Path:
        assert self.base is not None, "server not started"
        return self.base / "input"

    def object_info(self) -> dict[str, Any]:
        import requests
        r = requests.get(self.url("/object_info"), timeout=60)
        r.raise_for_status()
        return r.json()

    def queue(self, prompt: dict[str, Any]) -> str:
        """POST /prompt; returns the prompt id. A rejected prompt raises with ComfyUI's error JSON."""
        import requests
        prompt_id = str(uuid.uuid4())
        r = requests.post(self.url("/prompt"), timeout=60,
                          json={"prompt": prompt, "prompt_id": prompt_id, "client_id": self.client_id})
        if r.status_code != 200:
            raise RuntimeError(f"ComfyUI rejected the prompt (HTTP {r.status_code}): {r.text.strip()}")
        return r.json()["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 600.0) -> dict[str, Any]:
        """The /history entry of prompt_id once it has finished (success, error or interrupted)."""
        import requests
        deadline = time.monotonic() + timeout
        while True:
            r = requests.get(self.url(f"/history/{prompt_id}"), timeout=30)
            r.raise_for_status()
            entry = r.json().get(prompt_id)
            if entry is not None and entry.get("status", {}).get("completed") is not None:
                return entry
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} while running prompt {prompt_id}; "
                                   f"log {self.log_path}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s; log {self.log_path}")
            time.sleep(0.5)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt: the running prompt, or only prompt_id if it is the one running."""
        import requests
        r = requests.post(self.url("/interrupt"), json={"prompt_id": prompt_id} if prompt_id else {}, timeout=30)
        r.raise_for_status()

    # --- log -----------------------------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def log_tail(self, lines: int = 6) -> str:
        """The last non-empty log lines joined on one line (failure messages stay one line)."""
        tail = [ln.strip() for ln in self.log_text().splitlines() if ln.strip()][-lines:]
        return " | ".join(tail) or "(log empty)"

    def pack_import_problem(self) -> str | None:
        """Why ComfyUI did not load custom_nodes/brushstream, in one line; None when it loaded."""
        marker = f"custom_nodes{os.sep}{PACK_DIR_NAME}"
        text = self.log_text()
        lines = text.splitlines()
        failed = [ln for ln in lines if "IMPORT FAILED" in ln and ln.rstrip().endswith(marker)]
        if failed:
            why = [ln.strip() for ln in lines if marker in ln and ("Cannot import" in ln or "Skip " in ln
                                                                     or "comfy_entrypoint" in ln)]
            return f"{failed[0].strip()}; {why[-1] if why else 'no reason logged'} (log {self.log_path})"
        loaded = [ln for ln in lines if re.search(r"\d+\.\d+ seconds: ", ln) and ln.rstrip().endswith(marker)]
        if not loaded:
            return f"ComfyUI's custom-node import times do not list {marker} (log {self.log_path})"
        return None


def load_workflow(path: Path) -> dict[str, Any]:
    """An API-format graph ({node_id: {"class_type", "inputs"}}), also when saved wrapped as {"prompt": ...}."""
    graph = json.loads(path.read_text())
    if isinstance(graph.get("prompt"), dict):
        graph = graph["prompt"]
    bad = [k for k, v in graph.items() if not (isinstance(v, dict) and "class_type" in v)]
    if bad:
        raise ValueError(f"{path} is not an API-format workflow (node {bad[0]!r} has no class_type); "
                         "export it with 'Save (API)'")
    return graph


def write_json_atomic(path: Path, data: Any) -> None:
    """Readers never see a half-written file (the project's own atomic write)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")


def record_result(key: str, value: dict[str, Any], path: Path = RUNS_JSON) -> None:
    """Merge one entry into results/comfyui_runs.json, keeping the entries other tests (or runs) recorded."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = dict(value, recorded=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json_atomic(path, dict(sorted(data.items())))
