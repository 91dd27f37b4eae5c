"""The node pack inside a real ComfyUI server: import, object_info, a core-only smoke graph, every API-format
example workflow, and interrupting a running Brushstream node."""
from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from comfyui_host import RESULTS, ComfyServer, load_workflow, record_result, video_frame_count, write_json_atomic
from PIL import Image

SAVE_NODES = ("SaveImage", "SaveVideo")
PACK_PREFIX = "Brushstream"
PACK_MODULE = "custom_nodes.brushstream"
LONG_CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "bbb_burrow.mp4"


def smoke_prompt(prefix: str) -> dict[str, Any]:
    """Core nodes only: proves the harness (server, queue, history, websocket, output dir) by itself."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "content.jpg"}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                     "width": 160, "height": 96, "crop": "disabled"}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": prefix}},
    }


def fresh_inputs(comfy: ComfyServer, prompt: dict[str, Any]) -> dict[str, Any]:
    """The prompt with every input file it names (content.jpg, clip.mp4, ...) replaced by a new copy.

    ComfyUI caches node outputs across prompts: an identical sub-graph that already ran (in another example
    workflow, or in the same one run earlier) would be skipped with no progress events. A new file name changes
    the loaders' inputs, so they and everything downstream of them really run.
    """
    tag = uuid.uuid4().hex[:8]
    names = {p.name for p in comfy.input_dir.iterdir() if p.is_file()}
    out: dict[str, Any] = {}
    for node_id, node in prompt.items():
        inputs = {}
        for k, v in node.get("inputs", {}).items():
            if isinstance(v, str) and v in names:
                stem, dot, ext = v.rpartition(".")
                copy = f"{stem}_{tag}.{ext}" if dot else f"{v}_{tag}"
                if not (comfy.input_dir / copy).exists():
                    shutil.copyfile(comfy.input_dir / v, comfy.input_dir / copy)
                v = copy
            inputs[k] = v
        out[node_id] = dict(node, inputs=inputs)
    return out


def history_error(entry: dict[str, Any]) -> str:
    """The status and, for a failed prompt, ComfyUI's error message, on one line."""
    status = entry.get("status", {})
    for name, data in status.get("messages", []):
        if name in ("execution_error", "execution_interrupted"):
            where = f"{data.get('node_type')} (node {data.get('node_id')})"
            msg = str(data.get("exception_message", "")).strip().replace("\n", " ")
            return f"{status.get('status_str')}: {name} in {where}: {msg}"
    return f"{status.get('status_str')} (no error message)"


def exec_seconds(entry: dict[str, Any]) -> float | None:
    """Server-side run time, from the execution_start/execution_success timestamps (ms) in the history."""
    stamps = {name: data.get("timestamp") for name, data in entry.get("status", {}).get("messages", [])}
    if stamps.get("execution_start") and stamps.get("execution_success"):
        return round((stamps["execution_success"] - stamps["execution_start"]) / 1000, 2)
    return None


def saved_files(comfy: ComfyServer, prompt: dict[str, Any], entry: dict[str, Any]) -> list[tuple[str, Path]]:
    """(class_type, path) of each file the prompt's SaveImage/SaveVideo nodes wrote; fails on a node with none."""
    files = []
    for node_id, node in prompt.items():
        if node["class_type"] not in SAVE_NODES:
            continue
        results = [r for key in ("images", "videos", "gifs")
                   for r in entry.get("outputs", {}).get(node_id, {}).get(key, []) if isinstance(r, dict)]
        assert results, f"{node['class_type']} node {node_id} reported no saved file in /history"
        for r in results:
            assert r.get("type") == "output", f"{node['class_type']} node {node_id} saved to {r.get('type')!r}"
            files.append((node["class_type"], comfy.output_dir / r.get("subfolder", "") / r["filename"]))
    return files


def run_to_end(comfy: ComfyServer, prompt: dict[str, Any], timeout: float) -> tuple[str, dict[str, Any], float]:
    t0 = time.monotonic()
    prompt_id = comfy.queue(prompt)
    entry = comfy.wait(prompt_id, timeout=timeout)
    return prompt_id, entry, round(time.monotonic() - t0, 2)


def pack_nodes(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k.startswith(PACK_PREFIX) or v.get("python_module") == PACK_MODULE}


# --- tests ---------------------------------------------------------------------------------------------------

def test_pack_imports(comfy: ComfyServer) -> None:
    problem = comfy.pack_import_problem()
    assert problem is None, problem
    ids = sorted(k for k in comfy.object_info() if k.startswith(PACK_PREFIX))
    if not ids:
        pytest.skip(f"the pack imported, but /object_info has no node id starting with {PACK_PREFIX!r} yet")


def test_smoke_workflow(comfy: ComfyServer) -> None:
    prompt = smoke_prompt(f"smoke/smoke_{uuid.uuid4().hex[:8]}")
    prompt_id, entry, wall = run_to_end(comfy, prompt, timeout=120)
    assert entry["status"]["status_str"] == "success", f"smoke workflow: {history_error(entry)}"
    files = saved_files(comfy, prompt, entry)
    assert len(files) == 1, f"smoke workflow saved {len(files)} files, expected 1"
    path = files[0][1]
    assert path.is_file() and path.stat().st_size > 0, f"smoke workflow's PNG {path} is missing or empty"
    with Image.open(path) as im:
        assert (im.format, im.size) == ("PNG", (160, 96)), f"smoke workflow wrote {im.format} {im.size} at {path}"
    # The websocket listener saw this prompt run: the save node's `executed` and the prompt's success.
    executed = [e for e in comfy.prompt_events(prompt_id, "executed") if e["data"].get("node") == "4"]
    assert executed, f"no websocket 'executed' event for the smoke prompt's SaveImage (log {comfy.log_path})"
    assert comfy.prompt_events(prompt_id, "execution_success"), "no websocket 'execution_success' for the smoke prompt"
    record_result("smoke", {"wall_s": wall, "exec_s": exec_seconds(entry), "outputs": [
        {"file": str(path.relative_to(comfy.output_dir)), "bytes": path.stat().st_size}]})


def test_example_workflow(comfy: ComfyServer, example_workflow: Path) -> None:
    name = example_workflow.stem
    prompt = fresh_inputs(comfy, load_workflow(example_workflow))
    prompt_id, entry, wall = run_to_end(comfy, prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", f"{example_workflow.name}: {history_error(entry)}"
    files = saved_files(comfy, prompt, entry)
    assert files, f"{example_workflow.name} has no SaveImage/SaveVideo node"
    clip_frames = video_frame_count(comfy.input_dir / "clip.mp4") if "video" in name else None
    outputs = []
    for class_type, path in files:
        assert path.is_file() and path.stat().st_size > 0, f"{example_workflow.name}: output {path} is missing or empty"
        out: dict[str, Any] = {"node": class_type, "file": str(path.relative_to(comfy.output_dir)),
                               "bytes": path.stat().st_size}
        if path.suffix.lower() == ".png":
            with Image.open(path) as im:
                im.load()   # decodes every byte: a truncated PNG fails here
                out["size"] = list(im.size)
        if path.suffix.lower() == ".mp4" and clip_frames is not None:
            out["frames"] = video_frame_count(path)
            assert out["frames"] == clip_frames, \
                f"{example_workflow.name}: {path} has {out['frames']} frames, clip.mp4 has {clip_frames}"
        outputs.append(out)
    progress = comfy.prompt_events(prompt_id, "progress")
    assert progress, f"{example_workflow.name}: no websocket 'progress' event for prompt {prompt_id}"
    previews = [e["size"] for e in comfy.prompt_window(prompt_id) if e["type"] == "binary"]
    record_result(f"workflow:{name}", {"wall_s": wall, "exec_s": exec_seconds(entry), "outputs": outputs,
                                       "progress_events": len(progress), "preview_frames": len(previews),
                                       "preview_bytes": sum(previews)})


def test_interrupt(comfy: ComfyServer, example_workflows: list[Path]) -> None:
    chosen = ([p for p in example_workflows if "video" in p.stem]
              or [p for p in example_workflows if "train" in p.stem or "gatys" in p.stem])
    if not chosen:
        pytest.skip("no example workflow named *video*, *train* or *gatys* (example_workflows/*api*.json) to interrupt")
    workflow = chosen[0]
    prompt = fresh_inputs(comfy, load_workflow(workflow))
    # A clip whose frames take far longer than a websocket message (640x360, 96 frames), so "at most one frame after
    # the interrupt" is measurable from the events' arrival times.
    loader = next((k for k, v in prompt.items() if v["class_type"] == "LoadVideo"), None)
    if loader is not None and LONG_CLIP.is_file():
        copy = comfy.input_dir / f"interrupt_{uuid.uuid4().hex[:8]}.mp4"
        shutil.copyfile(LONG_CLIP, copy)
        prompt[loader]["inputs"]["file"] = copy.name
    start = len(comfy.events_snapshot())
    prompt_id = comfy.queue(prompt)

    def pack_progress(e: dict[str, Any]) -> bool:
        d = e.get("data")
        return (e["type"] == "progress" and isinstance(d, dict) and d.get("prompt_id") == prompt_id
                and str(prompt.get(str(d.get("node")), {}).get("class_type", "")).startswith(PACK_PREFIX))

    first = comfy.wait_event(pack_progress, timeout=300, start=start)
    assert first is not None, f"{workflow.name}: no 'progress' event from a Brushstream node within 300 s"
    # A few frames first, so the frame period is measured from the events themselves.
    comfy.wait_event(lambda e: pack_progress(e) and e["data"].get("value", 0) >= min(5, e["data"].get("max", 5)),
                     timeout=120, start=start)
    t_interrupt = time.monotonic()
    comfy.interrupt(prompt_id)
    stopped = comfy.wait_event(lambda e: e["type"] in ("execution_interrupted", "execution_success", "execution_error")
                               and isinstance(e.get("data"), dict) and e["data"].get("prompt_id") == prompt_id,
                               timeout=120, start=start)
    assert stopped is not None, f"{workflow.name}: no execution_interrupted within 120 s of POST /interrupt"
    assert stopped["type"] == "execution_interrupted", \
        f"{workflow.name}: got {stopped['type']} instead of execution_interrupted after POST /interrupt"
    latency = round(stopped["t"] - t_interrupt, 3)
    node = str(first["data"].get("node"))
    mine = [e for e in comfy.events_snapshot()[start:] if pack_progress(e) and str(e["data"].get("node")) == node]
    before = max(e["data"]["value"] for e in mine if e["t"] <= t_interrupt)
    last = max(e["data"]["value"] for e in mine if e["t"] <= stopped["t"])
    early = [e for e in mine if e["t"] <= t_interrupt]
    period = (early[-1]["t"] - early[0]["t"]) / max(len(early) - 1, 1)
    after = last - before
    # The frame running when the flag is set completes; one more event may already have been on its way.
    assert after <= 2, f"{workflow.name}: {after} frames finished after POST /interrupt (the running one may)"
    entry = comfy.wait(prompt_id, timeout=60)
    assert entry["status"]["status_str"] == "error", f"{workflow.name} after interrupt: {history_error(entry)}"

    # The server takes new work after an interrupt.
    smoke = smoke_prompt(f"smoke/after_interrupt_{uuid.uuid4().hex[:8]}")
    _, smoke_entry, smoke_wall = run_to_end(comfy, smoke, timeout=120)
    assert smoke_entry["status"]["status_str"] == "success", f"smoke after interrupt: {history_error(smoke_entry)}"
    record_result("interrupt", {"workflow": workflow.name, "interrupted_node": first["data"].get("node"),
                                "interrupted_class": prompt[str(first["data"].get("node"))]["class_type"],
                                "progress_at_interrupt": [first["data"].get("value"), first["data"].get("max")],
                                "latency_s": latency, "frames_after_interrupt": after,
                                "frame_period_s": round(period, 4), "clip": prompt[loader]["inputs"]["file"]
                                if loader is not None else None,
                                "smoke_after_wall_s": smoke_wall})


def test_object_info_brushstream(comfy: ComfyServer) -> None:
    nodes = pack_nodes(comfy.object_info())
    if not nodes:
        pytest.skip(f"/object_info has no {PACK_PREFIX} node yet ({comfy.pack_import_problem() or 'pack imported'})")
    entries = []
    for node_id, info in sorted(nodes.items()):
        inputs = info.get("input", {})
        entries.append({
            "id": node_id, "display_name": info.get("display_name"), "category": info.get("category"),
            "python_module": info.get("python_module"),
            "inputs": {group: list(inputs.get(group, {})) for group in ("required", "optional") if inputs.get(group)},
            "outputs": list(info.get("output_name") or info.get("output") or []),
        })
    write_json_atomic(RESULTS / "object_info_brushstream.json", {"nodes": entries})


def test_nodes_come_from_the_registry(comfy: ComfyServer) -> None:
    """Every registered method has a loader whose widgets are its declared options with their defaults and ranges,
    and Stylize Image shows the common stylize options: what ComfyUI itself reports, not what the pack thinks."""
    from brushstream.core.methods import STYLIZE_OPTIONS, available

    nodes = pack_nodes(comfy.object_info())
    for method, cls in available().items():
        info = nodes.get(f"{PACK_PREFIX}Load_{method}")
        assert info is not None, f"no loader for {method}"
        required = info["input"].get("required", {})
        shown = [o for o in cls.options if not o.texture_only]
        assert list(required) == [o.name for o in shown], method
        for opt in shown:
            spec = required[opt.name][1]
            default = ",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else opt.default
            assert spec.get("default") == default, (method, opt.name)
            if opt.kind == "float" and 0 < abs(opt.default) < 1:   # the widget can show its own default
                assert spec["step"] <= abs(opt.default) / 10 + 1e-12, (method, opt.name, spec["step"])
            if opt.kind in ("int", "float") and opt.maximum is not None:
                assert spec["max"] == opt.maximum and spec["min"] == (opt.minimum or 0), (method, opt.name)
    stylize = nodes[f"{PACK_PREFIX}StylizeImage"]["input"]
    assert {o.name for o in STYLIZE_OPTIONS} <= set(stylize["required"]) and "mask" in stylize.get("optional", {})
    swap = nodes[f"{PACK_PREFIX}Load_swap"]["input"]["required"]["patch_size"]
    assert swap[0] == "INT" and swap[1]["step"] == 2


def _has_seed_control(name: str, spec: list) -> bool:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from make_workflows import _has_seed_control as rule
    return rule(name, spec)


def test_ui_workflows_match_their_api_twins(comfy: ComfyServer, example_workflows: list[Path]) -> None:
    """Each UI-format example has its API twin's nodes and links, and each widget value sits in the slot ComfyUI's
    widget order gives it (the web page assigns widget values by position)."""
    info = comfy.object_info()
    for api_path in example_workflows:
        ui = json.loads(api_path.with_name(api_path.name.replace("_api", "")).read_text())
        api = load_workflow(api_path)
        assert {str(n["id"]): n["type"] for n in ui["nodes"]} == {k: v["class_type"] for k, v in api.items()}
        assert len(ui["links"]) == sum(isinstance(v, list) for n in api.values() for v in n["inputs"].values())
        for node in ui["nodes"]:
            node_info = info[node["type"]]
            specs = {**node_info["input"].get("required", {}), **node_info["input"].get("optional", {})}
            order = node_info.get("input_order") or {g: list(node_info["input"].get(g, {}))
                                                     for g in ("required", "optional")}
            slot = 0
            for name in (n for g in ("required", "optional") for n in order.get(g, [])):
                kind, opts = specs[name][0], (specs[name][1] if len(specs[name]) > 1 else {})
                if not (isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")):
                    continue
                value = api[str(node["id"])]["inputs"].get(name)
                if value is not None and not isinstance(value, list):
                    assert node["widgets_values"][slot] == value, (api_path.name, node["type"], name)
                slot += 1 + bool(opts.get("image_upload")) + _has_seed_control(name, specs[name])
            assert slot == len(node["widgets_values"]), (api_path.name, node["type"])


def _clip_with_audio(path: Path, frames: int = 24, fps: int = 12) -> None:
    """A small mp4 with moving colour bars and a 440 Hz tone, so the audio and the frame rate can be checked."""
    import av
    import numpy as np

    with av.open(str(path), "w") as box:
        video = box.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 128, 96, "yuv420p"
        audio = box.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for i in range(frames):
            rgb = np.zeros((96, 128, 3), np.uint8)
            rgb[:, (np.arange(128) + 4 * i) % 128 < 64] = (200, 60, 30)
            rgb[..., 2] = 120
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                box.mux(packet)
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(44100 * frames // fps) / 44100)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            for packet in audio.encode(chunk):
                box.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                box.mux(packet)


def test_stylize_video_keeps_frame_rate_and_audio(comfy: ComfyServer, example_workflows: list[Path]) -> None:
    import av

    chosen = [p for p in example_workflows if "video" in p.stem]
    if not chosen:
        pytest.skip("no example workflow named *video* (example_workflows/*api*.json)")
    clip = comfy.input_dir / f"clip_audio_{uuid.uuid4().hex[:8]}.mp4"
    _clip_with_audio(clip)
    prompt = load_workflow(chosen[0])
    loader = next(k for k, v in prompt.items() if v["class_type"] == "LoadVideo")
    prompt[loader]["inputs"]["file"] = clip.name
    _, entry, _ = run_to_end(comfy, prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", f"{chosen[0].name} with audio: {history_error(entry)}"
    (_, out), = [(c, p) for c, p in saved_files(comfy, prompt, entry) if p.suffix == ".mp4"]
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.audio, f"{out}: the audio track was dropped"
        assert float(b.streams.video[0].average_rate) == pytest.approx(float(a.streams.video[0].average_rate))
        assert float(b.duration) == pytest.approx(float(a.duration), abs=0.25)
    assert video_frame_count(out) == video_frame_count(clip)


def _small(prompt: dict[str, Any], image: str, node: str, side: int = 96) -> None:
    prompt[node] = {"class_type": "ImageScale", "inputs": {"image": [image, 0], "upscale_method": "area",
                                                           "width": side, "height": side * 2 // 3, "crop": "center"}}


def test_every_loader_stylizes_in_comfyui(comfy: ComfyServer) -> None:
    """Each registered method, loaded, encoded and run through the real node classes (execute paths included)."""
    from brushstream.core.methods import available

    prompt: dict[str, Any] = {"c": {"class_type": "LoadImage", "inputs": {"image": "content.jpg"}},
                              "s": {"class_type": "LoadImage", "inputs": {"image": "style.jpg"}}}
    _small(prompt, "c", "cs")
    tag = uuid.uuid4().hex[:8]
    for method, cls in available().items():
        if not cls.capabilities.arbitrary_style and not cls.capabilities.fixed_styles \
                and not cls.capabilities.trained_styles:
            continue
        options = {"steps": 2} if method == "gatys" else {}
        prompt[f"{method}_load"] = {"class_type": f"{PACK_PREFIX}Load_{method}", "inputs": options}
        style = {"style": ["s", 0]} if cls.capabilities.arbitrary_style else {"trained_style": "0"}
        prompt[f"{method}_code"] = {"class_type": f"{PACK_PREFIX}EncodeStyle",
                                    "inputs": {"model": [f"{method}_load", 0], **style}}
        prompt[f"{method}_run"] = {"class_type": f"{PACK_PREFIX}StylizeImage",
                                   "inputs": {"model": [f"{method}_load", 0], "style": [f"{method}_code", 0],
                                              "image": ["cs", 0]}}
        prompt[f"{method}_save"] = {"class_type": "SaveImage", "inputs": {
            "images": [f"{method}_run", 0], "filename_prefix": f"all/{method}_{tag}"}}
    prompt = _complete(comfy, prompt)
    _, entry, wall = run_to_end(comfy, prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", f"every loader: {history_error(entry)}"
    saved = {p.name.split(f"_{tag}")[0] for _, p in saved_files(comfy, prompt, entry)}   # method names hold "_"
    assert saved == {k[: -len("_load")] for k in prompt if k.endswith("_load")}
    record_result("every_loader", {"methods": sorted(saved), "wall_s": wall})


def test_frames_flow_and_evaluate_nodes(comfy: ComfyServer) -> None:
    """Stylize Frames on a clip's frames, Optical Flow of the clip and Evaluate Stylization's report."""
    tag = uuid.uuid4().hex[:8]
    clip = comfy.input_dir / f"frames_{tag}.mp4"
    shutil.copyfile(comfy.input_dir / "clip.mp4", clip)
    prompt = {
        "v": {"class_type": "LoadVideo", "inputs": {"file": clip.name}},
        "parts": {"class_type": "GetVideoComponents", "inputs": {"video": ["v", 0]}},
        "m": {"class_type": f"{PACK_PREFIX}Load_reconet", "inputs": {}},
        "code": {"class_type": f"{PACK_PREFIX}EncodeStyle", "inputs": {"model": ["m", 0], "trained_style": "0"}},
        "frames": {"class_type": f"{PACK_PREFIX}StylizeFrames",
                   "inputs": {"model": ["m", 0], "style": ["code", 0], "frames": ["parts", 0], "stream_id": tag}},
        "flow": {"class_type": f"{PACK_PREFIX}OpticalFlow", "inputs": {"frames": ["parts", 0]}},
        "eval": {"class_type": f"{PACK_PREFIX}Evaluate", "inputs": {"content": ["parts", 0], "stylized": ["frames", 0],
                                                                    "size": 128}},
        "save_frames": {"class_type": "SaveImage", "inputs": {"images": ["frames", 0],
                                                              "filename_prefix": f"frames/{tag}"}},
        "save_flow": {"class_type": "SaveImage", "inputs": {"images": ["flow", 0], "filename_prefix": f"flow/{tag}"}},
    }
    prompt = _complete(comfy, prompt)
    _, entry, wall = run_to_end(comfy, prompt, timeout=900)
    assert entry["status"]["status_str"] == "success", f"frames/flow/evaluate: {history_error(entry)}"
    files = [p for _, p in saved_files(comfy, prompt, entry)]
    frames = video_frame_count(clip)
    assert sum(f"frames/{tag}" in str(p) or p.parent.name == "frames" for p in files) == frames
    assert sum(p.parent.name == "flow" for p in files) == frames - 1
    report = json.loads(entry["outputs"]["eval"]["text"][0])
    assert report["images"] == frames and report["pairs"] == frames - 1 and report["content"] > 0
    record_result("frames_flow_evaluate", {"frames": frames, "wall_s": wall, "report": report})


def _complete(comfy: ComfyServer, prompt: dict[str, Any]) -> dict[str, Any]:
    """Required widgets left out get their defaults (as tools/make_workflows.py writes example workflows)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from make_workflows import complete
    return complete(prompt, comfy.object_info())


def test_a_shared_style_from_the_hub_and_its_original_file_paint_in_comfyui(
        comfy: ComfyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Someone's pytorch/examples style, imported and published to a loopback Hub, pulled by its commit into this
    ComfyUI's Hugging Face cache: the Johnson loader takes the pinned hf:// reference (offline, from the cache) and,
    beside it, the original .pth by path (converted in ComfyUI's process); both paint what the original network
    paints on the same photo."""
    import numpy as np
    import torch
    from huggingface_hub import constants

    from brushstream.core.cli import main
    from brushstream.tests.hub_server import HubServer
    from brushstream.tests.test_foreign_johnson import ExamplesNet, _randomise, examples_reference

    net = _randomise(ExamplesNet(), 11)
    original = tmp_path / "candy.pth"
    torch.save(net.state_dict(), original)
    pixels = (torch.rand(64, 96, 3, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(comfy.input_dir / "shared_style_photo.png")
    with HubServer() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "publisher_cache"))
        assert main(["weights", "import", str(original), "-o", str(tmp_path)]) == 0
        assert main(["weights", "publish", str(tmp_path / "candy.safetensors"), "--repo", "ada/styles",
                     "--licence", "BSD-3-Clause"]) == 0
        published = capsys.readouterr().out
        pinned = next(line.split("\t")[1] for line in published.splitlines() if line.startswith("pinned\t"))
        monkeypatch.setenv("HF_HUB_CACHE", str(comfy.base / "hf_cache"))   # the ComfyUI user's cache
        assert main(["weights", "pull", pinned]) == 0
        assert capsys.readouterr().out.strip() == pinned
    prompt: dict[str, Any] = {"c": {"class_type": "LoadImage", "inputs": {"image": "shared_style_photo.png"}}}
    tag = uuid.uuid4().hex[:8]
    for key, source in (("hub", pinned), ("pth", str(original))):
        prompt[f"{key}_load"] = {"class_type": f"{PACK_PREFIX}Load_johnson", "inputs": {"weights_source": source}}
        prompt[f"{key}_code"] = {"class_type": f"{PACK_PREFIX}EncodeStyle",
                                 "inputs": {"model": [f"{key}_load", 0], "trained_style": "candy"}}
        prompt[f"{key}_run"] = {"class_type": f"{PACK_PREFIX}StylizeImage", "inputs": {
            "model": [f"{key}_load", 0], "style": [f"{key}_code", 0], "image": ["c", 0]}}
        prompt[f"{key}_save"] = {"class_type": "SaveImage", "inputs": {
            "images": [f"{key}_run", 0], "filename_prefix": f"shared/{key}_{tag}"}}
    prompt = _complete(comfy, prompt)
    _, entry, wall = run_to_end(comfy, prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", f"shared style: {history_error(entry)}"
    x = torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255
    with torch.no_grad():
        expected = (examples_reference(net, x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    painted = {p.name.split("_")[0]: np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)
               for _, p in saved_files(comfy, prompt, entry)}
    assert sorted(painted) == ["hub", "pth"]
    for key, image in painted.items():
        assert float(np.abs(image - expected).max()) <= 1.0, key   # 8-bit rounding only
    assert float(expected.std()) > 10
    record_result("shared_style_round_trip", {"pinned": pinned.split("#")[0], "wall_s": wall})
