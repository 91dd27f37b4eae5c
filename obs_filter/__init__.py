"""Real-time OBS filter (capture -> stylize -> sink, obs-websocket control). Not built yet: it arrives
with the video methods (ReCoNet, LST video); nothing here is importable functionality for now."""
