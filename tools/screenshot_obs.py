"""Screenshot OBS's window with the live filter's stylized source in a scene: docs/obs_window.png.

Starts OBS headless under Xvfb with its preview on (host_tests/obs_host.py), runs the filter in this process on a
clip (ReCoNet, with the figures overlay), waits until the Media Source shows stylized frames, and grabs the screen.

    python tools/screenshot_obs.py [--clip ../shared/data/video/sam2_dog.mp4] [--style the_great_wave]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PIL import Image

from brushstream.core.io.atomic import atomic_path
from brushstream.obs_filter.control import ObsControl, ObsSettings
from brushstream.obs_filter.pipeline import LivePipeline
from brushstream.obs_filter.sinks import UdpStreamSink
from brushstream.obs_filter.sources import FileSource
from brushstream.obs_filter.stylizer import LiveStylizer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host_tests"))
from obs_host import ObsStudio, free_port  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clip", default=str(REPO.parent / "shared" / "data" / "video" / "sam2_dog.mp4"))
    p.add_argument("--style", default="the_great_wave")
    p.add_argument("--seconds", type=float, default=8.0, help="how long the stream runs before the screenshot")
    p.add_argument("--out", default=str(REPO / "docs" / "obs_window.png"))
    args = p.parse_args()
    size = (640, 360)
    with ObsStudio(preview=True, screen="1280x800x24") as obs:
        stylizer = LiveStylizer("reconet", [args.style, "starry_night"], options={"norm": "frame"})
        source = FileSource(args.clip, size, 30.0)
        import socket
        sink = UdpStreamSink(size, source.fps, port=free_port(socket.SOCK_DGRAM))
        pipeline = LivePipeline(source, stylizer, sink, overlay=True)
        control = ObsControl(ObsSettings("127.0.0.1", obs.port, obs.password), stylizer, sink.player_url()).start()
        if not control.connected.wait(30):
            raise SystemExit(f"OBS did not connect: {control.last_error}")
        pipeline.start()
        time.sleep(args.seconds)
        screen = obs.grab_screen()
        control.stop()
        pipeline.stop()
    # No window manager: OBS's window sits in the top-left corner of the screen; keep just the window.
    rows, cols = screen.any(axis=2).any(axis=1).nonzero()[0], screen.any(axis=2).any(axis=0).nonzero()[0]
    screen = screen[:rows[-1] + 1, :cols[-1] + 1]
    with atomic_path(args.out) as tmp:
        Image.fromarray(screen).save(tmp, format="PNG", optimize=True)
    print(f"wrote {args.out} ({screen.shape[1]}x{screen.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
