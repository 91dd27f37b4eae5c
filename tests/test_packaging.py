"""Packaging as ComfyUI-Manager and the Comfy Registry see it: requirements.txt, [tool.comfy], every package listed."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_requirements_txt_is_the_dependencies_without_torch():
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    listed = [ln for ln in lines if ln and not ln.startswith("#")]
    wanted = [d.split("#")[0].strip() for d in _pyproject()["project"]["dependencies"]]
    assert not any(d.startswith("torch") for d in listed)            # never fight the host's torch
    assert listed == [d for d in wanted if not d.startswith("torch")]


def test_comfy_registry_fields_are_complete():
    project, comfy = _pyproject()["project"], _pyproject()["tool"]["comfy"]
    assert project["name"] and project["version"].count(".") == 2 and project["urls"]["Repository"]
    for key in ("PublisherId", "DisplayName", "Icon", "requires-comfyui"):
        assert comfy.get(key), key
    for folder in comfy["includes"]:
        assert (ROOT / folder).exists(), folder


def test_every_python_package_folder_is_packaged():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    skip = {"tests", "host_tests", "bench", "tools", "assets", "docs", "example_workflows"}
    found = {"brushstream"} | {
        "brushstream." + ".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.rglob("__init__.py")
        if p.parent != ROOT and p.parent.relative_to(ROOT).parts[0] not in skip and ".git" not in p.parts}
    assert found <= listed, sorted(found - listed)
