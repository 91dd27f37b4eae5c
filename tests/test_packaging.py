"""Packaging as ComfyUI-Manager and the Comfy Registry see it: requirements.txt, [tool.comfy], every package listed."""
from pathlib import Path

import tomllib

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


def test_every_torch_load_refuses_pickled_code():
    """.pth files and checkpoints are pickles: every torch.load in the product, tools, benches and tests passes
    weights_only=True, so loading a file can never run code from it."""
    import ast
    root = Path(__file__).resolve().parents[1]
    unsafe = []
    for path in root.rglob("*.py"):
        if any(part.startswith(".") or part in ("build", "results") for part in path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                if not safe:
                    unsafe.append(f"{path.relative_to(root)}:{node.lineno}")
    assert unsafe == []
