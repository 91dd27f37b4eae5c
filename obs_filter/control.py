"""OBS control through obs-websocket v5 (obsws-python): the Media Source that plays the stream, scene -> style,
style and strength requests, and reconnecting when OBS goes away.

Why obsws-python: it is the maintained v5 client (obs-websocket-py's last release was in early 2023). Its requests
are not thread-safe (one socket, no request ids), so every request here holds one lock; its event thread ends
silently when OBS closes, so a heartbeat request notices the loss and the control thread reconnects with backoff
while the stream keeps flowing. Failed requests raise :class:`ObsRequestError` (one line: request, code, comment).

Requests from other clients (a Stream Deck, a script, the hotkeys script in obs_filter/obs_hotkeys.lua) arrive as
obs-websocket custom events: ``BroadcastCustomEvent {"eventData": {"brushstream": REQUEST, ...}}`` with REQUEST one of
``next_style``, ``previous_style``, ``style`` (+ ``"style": NAME or INDEX``), ``add_style`` (+ ``"style"``: an image
file for LST, a trained network for ReCoNet; loaded in the background, then switched to), ``strength_up``,
``strength_down``, ``strength`` (+ ``"value": 0..1``). The filter answers every change with
``{"brushstream_status": {...}}``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.errors import BrushstreamError

log = logging.getLogger("brushstream.obs")
# obsws-python logs its connection parameters, password included, at INFO, and every failed request with a
# traceback at ERROR; this module turns both into its own one-line messages.
logging.getLogger("obsws_python").setLevel(logging.CRITICAL + 1)

MEDIA_SOURCE_KIND = "ffmpeg_source"
RESOURCE_NOT_FOUND = 600
STRENGTH_STEP = 0.1


class ObsRequestError(BrushstreamError):
    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code     # obs-websocket's request status code, when OBS answered


def connect_client(host: str, port: int, password: str, timeout: float = 3.0):
    """A ready obsws-python request client; one line on failure."""
    import obsws_python as obsws

    try:
        return obsws.ReqClient(host=host, port=port, password=password, timeout=timeout)
    except obsws.error.OBSSDKError as exc:
        raise BrushstreamError(f"obs-websocket at {host}:{port}: {exc} (check OBS_WEBSOCKET_PASSWORD)") from None
    except (OSError, TimeoutError) as exc:
        raise BrushstreamError(f"obs-websocket at {host}:{port}: cannot connect ({exc}); is OBS running with "
                               f"Tools > WebSocket Server Settings > Enable on?") from None


@dataclass
class ObsSettings:
    host: str = "127.0.0.1"
    port: int = 4455
    password: str = ""
    input_name: str = "Brushstream"
    scene: str | None = None                     # where the Media Source goes (None: the current program scene)
    scene_styles: dict[str, str] = field(default_factory=dict)   # OBS scene name -> style label
    heartbeat: float = 1.0                       # seconds between liveness checks
    max_backoff: float = 8.0


def media_source_settings(url: str) -> dict[str, Any]:
    """The Media Source settings for a live UDP stream: no buffering (latency), never cleared or restarted by OBS
    (the stream is continuous), reconnect quickly if the input ends."""
    return {"is_local_file": False, "input": url, "input_format": "mpegts", "buffering_mb": 0,
            "reconnect_delay_sec": 1, "restart_on_activate": False, "clear_on_media_end": False,
            "close_when_inactive": False, "hw_decode": False,
            # nobuffer as OBS sets it for buffering_mb 0 (an fflags value replaces OBS's), plus noparse: the H.264
            # parser would hold each frame until the next one begins.
            "ffmpeg_options": "fflags=nobuffer+noparse"}


class ObsControl:
    """Keeps a connection to OBS for as long as the filter runs. ``stylizer`` is switched by scene and requests."""

    def __init__(self, settings: ObsSettings, stylizer, stream_url: str | None,
                 connect: Callable[..., Any] = connect_client):
        self.settings, self.stylizer, self.stream_url, self._connect = settings, stylizer, stream_url, connect
        self._lock = threading.Lock()
        self._client = None
        self._events = None
        self._stop = threading.Event()
        self._lost = threading.Event()
        self.connected = threading.Event()
        self.connections = 0              # successful connects, the first included
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None

    # -- requests -------------------------------------------------------------------------------------------------
    def request(self, name: str, /, **fields) -> Any:
        """Send one request (snake_case name, e.g. ``get_scene_list``); raises ObsRequestError when it fails."""
        import obsws_python as obsws

        with self._lock:
            client = self._client
            if client is None:
                raise ObsRequestError(f"obs-websocket: {name}: not connected")
            try:
                return getattr(client, name)(**fields)
            except obsws.error.OBSSDKRequestError as exc:
                raise ObsRequestError(f"obs-websocket: {exc.req_name} failed (code {exc.code}: "
                                      f"{exc.args[0] if exc.args else ''})", exc.code) from None
            except obsws.error.OBSSDKError as exc:
                raise ObsRequestError(f"obs-websocket: {name} failed ({exc})") from None
            except Exception as exc:     # the socket went: the control thread will reconnect
                self._lost.set()
                raise ObsRequestError(f"obs-websocket: {name}: connection lost ({type(exc).__name__})") from None

    def _missing(self, name: str, /, **fields) -> bool:
        """True when the request fails with 'resource not found'; other failures raise."""
        try:
            self.request(name, **fields)
            return False
        except ObsRequestError as exc:
            if exc.code == RESOURCE_NOT_FOUND:
                return True
            raise

    # -- set-up on every connect --------------------------------------------------------------------------------
    def scene_names(self) -> list[str]:
        return [s["sceneName"] for s in self.request("get_scene_list").scenes]

    def current_scene(self) -> str:
        return self.request("get_current_program_scene").current_program_scene_name

    def setup_media_source(self) -> None:
        """Create the Media Source in its scene (and every mapped scene), or point the existing one at the stream."""
        s, name = self.settings, self.settings.input_name
        settings = media_source_settings(self.stream_url)
        scenes = self.scene_names()
        home = s.scene or self.current_scene()
        if home not in scenes:
            raise ObsRequestError(f"obs-websocket: scene {home!r} does not exist (scenes: {', '.join(scenes)})")
        if self._missing("get_input_settings", name=name):
            self.request("create_input", sceneName=home, inputName=name, inputKind=MEDIA_SOURCE_KIND,
                         inputSettings=settings, sceneItemEnabled=True)
            self._fit_to_canvas(home)
            log.info("OBS: created Media Source %r in scene %r", name, home)
        else:
            self.request("set_input_settings", name=name, settings=settings, overlay=True)
        for scene in [home, *s.scene_styles]:
            if scene in scenes:
                self._place_in(scene)

    def _place_in(self, scene: str) -> None:
        """Add the Media Source to ``scene`` (fitted to the canvas) unless it is there already."""
        name = self.settings.input_name
        if self._missing("get_scene_item_id", scene_name=scene, source_name=name):
            self.request("create_scene_item", scene_name=scene, source_name=name, enabled=True)
            self._fit_to_canvas(scene)

    def _fit_to_canvas(self, scene: str) -> None:
        video = self.request("get_video_settings")
        item = self.request("get_scene_item_id", scene_name=scene, source_name=self.settings.input_name)
        self.request("set_scene_item_transform", scene_name=scene, item_id=item.scene_item_id,
                     transform={"boundsType": "OBS_BOUNDS_SCALE_INNER", "boundsWidth": video.base_width,
                                "boundsHeight": video.base_height, "positionX": 0, "positionY": 0,
                                "boundsAlignment": 0, "alignment": 5})

    # -- events ------------------------------------------------------------------------------------------------
    def on_current_program_scene_changed(self, data) -> None:
        self.apply_scene(data.scene_name)
        if self.stream_url and data.scene_name in self.settings.scene_styles:
            try:   # a mapped scene made after the filter connected gets the source on its first showing
                self._place_in(data.scene_name)
            except BrushstreamError as exc:
                log.warning("scene %r: %s", data.scene_name, exc)

    def on_exit_started(self, _data) -> None:
        self._lost.set()

    def on_custom_event(self, data) -> None:
        request = getattr(data, "brushstream", None)
        if request is None:
            return
        try:
            self.handle(str(request), data)
        except BrushstreamError as exc:
            log.warning("request %s: %s", request, exc)

    def apply_scene(self, scene: str) -> None:
        label = self.settings.scene_styles.get(scene)
        if label is None:
            return
        index = self.stylizer.find(label)
        if index is None:
            log.warning("scene %r maps to style %r, which is not loaded", scene, label)
            return
        self.stylizer.select(index)
        log.info("scene %r: style %s", scene, label)

    def handle(self, request: str, data: Any = None) -> None:
        st = self.stylizer
        if request == "next_style":
            st.step(+1)
        elif request == "previous_style":
            st.step(-1)
        elif request == "style":
            wanted = str(getattr(data, "style", ""))
            index = int(wanted) if wanted.isdigit() else st.find(wanted)
            if index is None:
                raise BrushstreamError(f"no style {wanted!r} (styles: {', '.join(st.labels())})")
            st.select(index)
        elif request == "add_style":
            # Loaded and warmed in the background while the stream goes on, then switched to (LST: any image file).
            st.add_style(str(getattr(data, "style", "")),
                         done=lambda index: (st.select(index), self.broadcast_status()))
        elif request in ("strength_up", "strength_down"):
            st.set_strength(st.strength + (STRENGTH_STEP if request == "strength_up" else -STRENGTH_STEP))
        elif request == "strength":
            st.set_strength(float(getattr(data, "value")))
        else:
            raise BrushstreamError(f"unknown request {request!r}")
        self.broadcast_status()

    def broadcast_status(self) -> None:
        wanted = self.stylizer.wanted_label()
        try:
            # obsws-python sends its argument as the whole request body, so the payload is wrapped once more.
            self.request("broadcast_custom_event", eventData={"eventData": {"brushstream_status": {
                "style": wanted, "strength": round(self.stylizer.strength, 3), "styles": self.stylizer.labels()}}})
        except ObsRequestError as exc:
            log.debug("status not sent: %s", exc)

    # -- connection life ---------------------------------------------------------------------------------------
    def _open(self) -> None:
        import obsws_python as obsws

        s = self.settings
        client = self._connect(s.host, s.port, s.password)
        events = obsws.EventClient(host=s.host, port=s.port, password=s.password, timeout=3)
        events.callback.register([self.on_current_program_scene_changed, self.on_exit_started,
                                  self.on_custom_event])
        with self._lock:
            self._client, self._events = client, events
        self._lost.clear()
        if self.stream_url:
            self.setup_media_source()
        self.apply_scene(self.current_scene())

    def _close(self) -> None:
        with self._lock:
            client, events, self._client, self._events = self._client, self._events, None, None
        for c in (events, client):
            if c is None:
                continue
            try:
                c.base_client.ws.close() if c is events else c.disconnect()
            except Exception:
                pass
        self.connected.clear()

    def _alive(self) -> bool:
        if self._lost.is_set() or self._events is None or not self._events.worker.is_alive():
            return False
        try:
            self.request("get_version")
            return True
        except ObsRequestError:
            return False

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._open()
            except (BrushstreamError, OSError, TimeoutError, Exception) as exc:
                message = " ".join(str(exc).split()) or type(exc).__name__
                if message != self.last_error:
                    log.warning("OBS: %s; retrying", message)
                self.last_error = message
                self._close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
                continue
            self.connections += 1
            self.last_error = None
            backoff = 0.5
            self.connected.set()
            log.info("OBS: connected to %s:%d%s", self.settings.host, self.settings.port,
                     " (again)" if self.connections > 1 else "")
            while not self._stop.wait(self.settings.heartbeat) and self._alive():
                pass
            self._close()
            if not self._stop.is_set():
                log.warning("OBS: connection lost; the stream goes on, reconnecting")

    def start(self) -> "ObsControl":
        self._thread = threading.Thread(target=self.run, name="brushstream-obs-control", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._close()
        if self._thread is not None:
            self._thread.join(timeout=5)
