"""Weights fixtures: no test reaches the internet; a loopback Hub stands in for huggingface.co.

conftest.py re-exports everything here (``__all__``), so tests just name the fixtures.
"""
import os
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from .hub_server import HubServer

# The repository is cloned with shared/ beside it (data and pretrained weights, read-only);
# BRUSHSTREAM_SHARED points elsewhere (and lets a test run prove the suite skips cleanly without it).
SHARED = Path(os.environ.get("BRUSHSTREAM_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SHARED_DATA = SHARED / "data"
SHARED_WEIGHTS = SHARED / "weights"

__all__ = ["SHARED", "SHARED_DATA", "SHARED_WEIGHTS", "_offline_weights", "hf_env", "hub", "hub_server", "empty_hub"]


@pytest.fixture(autouse=True, scope="session")
def _offline_weights(tmp_path_factory):
    """Every test: the Hub is offline unless a test asks for the loopback one, the VGG16 backbone comes
    from ../shared/weights, and the HF cache is a fresh temp folder (never the user's)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BRUSHSTREAM_WEIGHTS_DIR", str(SHARED_WEIGHTS))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf_cache")))
    mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # huggingface-hub reads the variable at import time
    yield
    mp.undo()


@pytest.fixture
def hub_server():
    """A loopback Hub (LFS-style: 302 to a loopback CDN) serving ../shared/weights; see tests/hub_server.py."""
    with HubServer(SHARED_WEIGHTS) as server:
        yield server


@pytest.fixture
def hf_env(hub_server, tmp_path, monkeypatch):
    """Point huggingface-hub at ``hub_server`` with an empty cache, online, and no weights folder.

    Only environment variables are set (no patching of huggingface-hub's module constants other than
    the offline flag): brushstream reads HF_ENDPOINT / HF_HUB_CACHE at call time, and this proves it.
    Yields the (empty) cache folder.
    """
    yield _point_huggingface_hub_at(hub_server, tmp_path, monkeypatch)


def _point_huggingface_hub_at(server: HubServer, tmp_path, monkeypatch):
    """Online, an empty cache under ``tmp_path``, no weights folder; returns the cache folder."""
    cache = tmp_path / "hf_home" / "hub"
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(cache.parent))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("BRUSHSTREAM_WEIGHTS_DIR", raising=False)
    return cache


@pytest.fixture
def hub(hub_server, hf_env):
    """Both at once: the loopback Hub, with huggingface-hub pointed at it. Yields the server."""
    return hub_server


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """A loopback Hub with no repositories yet (publish makes them; tests/hub_server.py), huggingface-hub pointed at
    it with an empty cache, online, and no weights folder; needs nothing from ../shared. Yields the server."""
    with HubServer() as server:
        _point_huggingface_hub_at(server, tmp_path, monkeypatch)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield server
