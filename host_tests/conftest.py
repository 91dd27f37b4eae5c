"""Integration tests against a real ComfyUI (the pinned snapshot in ../shared/comfyui, run from a cached venv).

Without ../shared/comfyui (or ../shared/data for the test inputs) every test here is skipped with one stated
reason. The first session builds ComfyUI's venv (~4 min, ~6 GB; see comfyui_host.ensure_venv).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from comfyui_host import COMFYUI, DATA, REPO, SERVER_LOG, ComfyServer


def example_workflow_files() -> list[Path]:
    return sorted((REPO / "example_workflows").glob("*api*.json"))


def missing_shared() -> str | None:
    if not (COMFYUI / "main.py").is_file():
        return f"needs {COMFYUI} (the pinned ComfyUI source snapshot beside the repository), which is absent"
    if not DATA.is_dir():
        return f"needs {DATA} (test inputs beside the repository), which is absent"
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One test per example workflow; none yet means an empty parameter set, which pytest reports as a skip.
    if "example_workflow" in metafunc.fixturenames:
        files = example_workflow_files()
        metafunc.parametrize("example_workflow", files, ids=[p.stem for p in files])


@pytest.fixture(scope="session")
def example_workflows() -> list[Path]:
    """The repository's API-format example workflows (example_workflows/*api*.json)."""
    return example_workflow_files()


@pytest.fixture(scope="session")
def comfy() -> Iterator[ComfyServer]:
    reason = missing_shared()
    if reason:
        pytest.skip(reason)
    with ComfyServer(log_path=SERVER_LOG) as server:
        yield server
