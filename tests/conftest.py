"""Shared test set-up: the data and weights beside the repository, and a loopback Hub.

Without ../shared (a clone outside this workspace) the tests that read it are skipped with one visible
reason, and the rest still run.
"""
import inspect
import os

import pytest

# Under pytest-xdist (README's test command runs two workers on the two cores) each worker, and every process it
# starts, computes on one thread: two workers of two threads each would fight over the cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)

from .weights_fixtures import *  # noqa: E402,F401,F403  (fixtures are found by name)
from .weights_fixtures import SHARED, SHARED_DATA, SHARED_WEIGHTS  # noqa: E402,F401  (explicit, for `from .conftest import`)

NO_SHARED = f"needs {SHARED} (shared data and pretrained weights beside the repository), which is absent"


def _needs_shared(item) -> bool:
    if "hub_server" in getattr(item, "fixturenames", ()):
        return True
    try:
        return "SHARED" in inspect.getsource(item.module)
    except (OSError, TypeError):
        return True


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir() and SHARED_WEIGHTS.is_dir():
        return
    skip = pytest.mark.skip(reason=NO_SHARED)
    for item in items:
        if _needs_shared(item):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder with the first six training photos: a tiny content set for training tests."""
    import shutil
    folder = tmp_path_factory.mktemp("photos")
    for p in sorted((SHARED_DATA / "content").glob("*.jpg"))[:6]:
        shutil.copy(p, folder)
    return folder
