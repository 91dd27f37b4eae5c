"""Brushstream's real-time OBS filter: capture -> stylize -> sink on three threads, controlled through obs-websocket.

``brushstream obs`` (obs_filter/cli.py) wires the parts:

- sources.py    a camera (OpenCV), a looped video file (PyAV), or an OBS source pulled as screenshots;
- stylizer.py   ReCoNet or LST from core/ with a stream state, every style preloaded and warmed, switched
                between two frames;
- pipeline.py   the three threads, joined by one-frame slots that drop stale frames, and the pacing;
- stats.py      fps, per-stage latency and dropped frames, logged and drawn as an overlay;
- sinks.py      MPEG-TS over UDP for an OBS Media Source (H.264, BT.709 tagged), or a virtual camera;
- control.py    obs-websocket v5 through obsws-python: the Media Source, scene -> style, requests, reconnects;
- config.py     where the connection comes from (the password: OBS_WEBSOCKET_PASSWORD or a config file only);
- stamp.py      a frame counter drawn into frames and read back from OBS screenshots (end-to-end latency);
- obs_hotkeys.lua  the script streamers load into OBS: hotkeys that send the filter its requests.

Only core/ is imported from the rest of the project; nothing in core/ imports this package.
"""
