"""Shared test set-up: the data and weights beside the repository, and a loopback Hub."""
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from .hub_server import HubServer

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATA = SHARED / "data"
SHARED_WEIGHTS = SHARED / "weights"


@pytest.fixture(autouse=True, scope="session")
def _offline_weights(tmp_path_factory):
    """Tests never reach the internet: the Hub is offline unless a test starts the loopback one, the
    VGG16 backbone comes from ../shared/weights, and the HF cache is a fresh temp folder."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BRUSHSTREAM_WEIGHTS_DIR", str(SHARED_WEIGHTS))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf_cache")))
    mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # huggingface-hub reads the variable at import time
    yield
    mp.undo()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A loopback Hub serving ../shared/weights, with huggingface-hub pointed at it and an empty cache."""
    with HubServer(SHARED_WEIGHTS) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
        monkeypatch.delenv("BRUSHSTREAM_WEIGHTS_DIR", raising=False)
        yield server
