"""Files in and out: atomic writes, still images, video and its audio. Depends on nothing else of core but errors
and ops (resizing)."""
