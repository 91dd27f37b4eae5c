"""``brushstream obs``: the live filter from the command line (registered through the ``brushstream.commands``
entry point, so core/ does not import this package)."""
from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass

from ..core.errors import BrushstreamError
from .config import connection
from .control import ObsControl, ObsSettings, connect_client
from .pipeline import LivePipeline
from .sinks import DEFAULT_PORT, UdpStreamSink, VirtualCamSink
from .sources import open_source
from .stylizer import LiveStylizer, live_methods

log = logging.getLogger("brushstream.obs")


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise BrushstreamError(f"--size must be WIDTHxHEIGHT, e.g. 640x360, not {text!r}")
    w, h = map(int, match.groups())
    if not (64 <= w <= 7680 and 64 <= h <= 4320) or w % 2 or h % 2:
        raise BrushstreamError(f"--size {text}: width and height must be even, 64..7680 x 64..4320")
    return w, h


def parse_scene_styles(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        scene, sep, style = pair.partition("=")
        if not sep or not scene or not style:
            raise BrushstreamError(f"--scene-style takes SCENE=STYLE, not {pair!r}")
        out[scene] = style
    return out


def add_obs_parser(sub, parser_class) -> None:
    o = sub.add_parser("obs", help="live style for streamers: a camera or clip, stylized in real time, into OBS",
                       description="Stylize a camera, a looped clip or an OBS source in real time and send it to OBS "
                                   "(a Media Source playing a local stream, set up through obs-websocket) or to a "
                                   "virtual camera. The password comes from OBS_WEBSOCKET_PASSWORD or the config "
                                   "file, never from the command line. Figures (fps, per-stage latency, dropped "
                                   "frames) are logged every few seconds.")
    o.add_argument("--source", required=True, help="camera:N, a video file (looped), or obs:SOURCE_NAME (screenshots, "
                                                   "at most 10 fps)")
    o.add_argument("--method", default="reconet", choices=live_methods(),
                   help="any method that can stream (default reconet); its live settings apply unless given "
                        f"({_live_settings()})")
    o.add_argument("--style", action="append", default=[],
                   help="a style to switch between; repeat. reconet, johnson: a trained style (starry_night, ... "
                        "or a .safetensors file; none: every bundled live network); the others: a style image")
    o.add_argument("--sink", default="stream", choices=["stream", "virtualcam"])
    o.add_argument("--fps", type=float, default=30.0, help="target frame rate (default 30)")
    o.add_argument("--size", default="640x360", help="stream size WxH (default 640x360)")
    o.add_argument("--strength", type=float, default=1.0, help="style strength 0..1 (requests change it live)")
    o.add_argument("--temporal-strength", type=float,
                   help="image methods: the flow-guided blend of the previous output, 0..1")
    o.add_argument("--obs-host", help="obs-websocket host (default 127.0.0.1 or the config file's)")
    o.add_argument("--obs-port", type=int, help="obs-websocket port (default 4455 or the config file's)")
    o.add_argument("--obs-config", help="TOML file with [obs] host, port, password (default "
                                        "~/.config/brushstream/obs.toml)")
    o.add_argument("--no-obs", action="store_true", help="do not connect to OBS (play the stream or camera yourself)")
    o.add_argument("--obs-scene", help="scene the Media Source is added to (default: the current program scene)")
    o.add_argument("--obs-input", default="Brushstream", help="name of the Media Source (default Brushstream)")
    o.add_argument("--scene-style", action="append", default=[], metavar="SCENE=STYLE",
                   help="switching OBS to SCENE switches to STYLE; repeat")
    o.add_argument("--stream-port", type=int, default=DEFAULT_PORT, help=f"local UDP port (default {DEFAULT_PORT})")
    o.add_argument("--flush-copies", type=int, metavar="N",
                   help="stream: copies of each frame sent after it to push it through a player's frame-threaded "
                        "decoder (default: this machine's CPU count, as OBS's decoder holds one frame per CPU)")
    o.add_argument("--pts", choices=["asap", "clock"], default="asap",
                   help="stream timestamps: asap (default) makes OBS show each frame on arrival; clock keeps real "
                        "timing, for players or recorders that need it (OBS then adds ~0.1 s)")
    o.add_argument("--camera-device", help="virtual camera device (default: the first free one)")
    o.add_argument("--overlay", action="store_true", help="draw fps, latency and dropped frames into the output")
    o.add_argument("--stamp", action="store_true", help="draw a frame counter into the corner (latency probes)")
    o.add_argument("--stats-every", type=float, default=5.0, help="seconds between figure lines (0: none)")
    o.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    add_live_method_options(o)
    o.set_defaults(func=cmd_obs)


def _live_settings() -> str:
    from ..core.methods import available

    return "; ".join(f"{name}: " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in cls.live_options.items())
                     for name, cls in available().items() if name in live_methods() and cls.live_options)


def add_live_method_options(parser) -> None:
    """The live methods' declared options as flags (--model, --runtime, --work-size, --level, ...), with each
    method's live default in the help."""
    from ..core.cli_options import add_method_options
    from ..core.methods import available

    add_method_options(parser, {name: available()[name] for name in live_methods()})


def method_options(args) -> dict:
    """The options typed for --method, checked against its declaration (a flag of another method is one line)."""
    from ..core.cli_options import given_options
    from ..core.cli_options import method_options as checked
    from ..core.methods import get

    return checked(get(args.method), given_options(args))


@dataclass
class LiveFilter:
    """Everything ``brushstream obs`` runs, built and checked from its arguments before anything starts."""
    pipeline: LivePipeline
    obs: ObsSettings | None      # None with --no-obs
    stream_url: str | None       # what OBS's Media Source plays (None for the virtual camera)


def build_filter(args) -> LiveFilter:
    size = parse_size(args.size)
    if not 1 <= args.fps <= 240:
        raise BrushstreamError(f"--fps must be 1..240, not {args.fps}")
    if not 0 <= args.strength <= 1:
        raise BrushstreamError(f"--strength must be 0..1, not {args.strength}")
    if args.flush_copies is not None and not 0 <= args.flush_copies <= 16:
        raise BrushstreamError(f"--flush-copies must be 0..16, not {args.flush_copies}")
    scene_styles = parse_scene_styles(args.scene_style)
    host, port, password = connection(args.obs_host, args.obs_port, args.obs_config)
    use_obs = not args.no_obs
    if args.source == f"obs:{args.obs_input}":
        raise BrushstreamError(f"{args.source}: that is the filter's own output; pick the camera's OBS source")
    if not use_obs and (scene_styles or args.source.startswith("obs:")):
        raise BrushstreamError("--scene-style and obs: sources need OBS; drop --no-obs")
    if use_obs:
        try:
            import obsws_python  # noqa: F401
        except ImportError:
            raise BrushstreamError("talking to OBS needs obsws-python: pip install 'brushstream[obs]' "
                                   "(or run with --no-obs)") from None

    stylizer = LiveStylizer(args.method, args.style, options=method_options(args),
                            strength=args.strength, temporal_strength=args.temporal_strength)
    missing = sorted(set(scene_styles.values()) - set(stylizer.labels()))
    if missing:
        raise BrushstreamError(f"--scene-style names styles that are not loaded: {', '.join(missing)} "
                               f"(loaded: {', '.join(stylizer.labels())})")
    source = open_source(args.source, size, args.fps, lambda: connect_client(host, port, password))
    try:
        if args.sink == "stream":
            sink = UdpStreamSink(size, source.fps, port=args.stream_port, flush_copies=args.flush_copies,
                                 timestamps=args.pts)
            url = sink.player_url()
        else:
            sink = VirtualCamSink(size, source.fps, device=args.camera_device)
            url = None
    except BaseException:
        source.close()   # a camera must not stay open behind a one-line error
        raise
    pipeline = LivePipeline(source, stylizer, sink, overlay=args.overlay, stamp_frames=args.stamp)
    settings = ObsSettings(host, port, password, input_name=args.obs_input, scene=args.obs_scene,
                           scene_styles=scene_styles) if use_obs else None
    return LiveFilter(pipeline, settings, url)


def cmd_obs(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    live = build_filter(args)
    pipeline, control = live.pipeline, None
    try:
        warm = pipeline.start()
        log.info("%s -> %s -> %s at %s, %g fps; styles %s (warmed in %.1f s)", pipeline.source.name, args.method,
                 pipeline.sink.name, args.size, pipeline.source.fps, ", ".join(pipeline.stylizer.labels()), warm)
        if live.obs is not None:
            control = ObsControl(live.obs, pipeline.stylizer, live.stream_url).start()
        pipeline.wait(args.duration, report_every=args.stats_every)
    finally:
        if control is not None:
            control.stop()
        pipeline.stop()
        log.info("done: %s", pipeline.stats.line())
    return 0
