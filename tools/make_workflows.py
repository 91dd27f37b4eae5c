"""Write example_workflows/: each example once as ComfyUI's API format (NAME_api.json, what POST /prompt takes)
and once as the UI format (NAME.json, what the web page loads), from the one graph defined here.

The UI format needs each node's widget order and output types, which only ComfyUI knows: give its /object_info,
as a URL of a running server or a saved JSON file.

    python tools/make_workflows.py --object-info http://127.0.0.1:8188/object_info
"""
from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

from brushstream.core.io.atomic import atomic_path
from brushstream.core.methods import DEFAULT_METHOD, get

OUT = Path(__file__).resolve().parents[1] / "example_workflows"

# Inputs the workflows read from ComfyUI's input folder (the names).
CONTENT, STYLE, CLIP = "content.jpg", "style.jpg", "clip.mp4"

# The default method's weight files as it declares them (the saved /object_info may predate a new default file).
DEFAULT_WEIGHTS = {o.name: str(o.default) for o in get(DEFAULT_METHOD).options if o.weights}

WORKFLOWS: dict[str, dict] = {
    # Any style image, with the method every host defaults to, at its default settings.
    "image_arbitrary_style": {
        "1": {"class_type": "LoadImage", "inputs": {"image": CONTENT}},
        "2": {"class_type": "LoadImage", "inputs": {"image": STYLE}},
        "3": {"class_type": f"BrushstreamLoad_{DEFAULT_METHOD}", "inputs": DEFAULT_WEIGHTS},
        "4": {"class_type": "BrushstreamEncodeStyle", "inputs": {"model": ["3", 0], "style": ["2", 0]}},
        "5": {"class_type": "BrushstreamStylizeImage",
              "inputs": {"model": ["3", 0], "style": ["4", 0], "image": ["1", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "brushstream_image"}},
    },
    # Gatys's optimisation with a live preview: long enough on a CPU to watch (and to interrupt).
    "gatys_optimize": {
        "1": {"class_type": "LoadImage", "inputs": {"image": CONTENT}},
        "2": {"class_type": "LoadImage", "inputs": {"image": STYLE}},
        "3": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "area", "width": 256,
                                                      "height": 170, "crop": "disabled"}},
        "4": {"class_type": "BrushstreamGatysOptimize",
              "inputs": {"image": ["3", 0], "style": ["2", 0], "steps": 40, "optimizer": "adam", "lr": 0.03}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "brushstream_gatys"}},
    },
    # A clip through ReCoNet's temporal state; SaveVideo keeps the frame rate and the audio track.
    "video_temporal": {
        "1": {"class_type": "LoadVideo", "inputs": {"file": CLIP}},
        "2": {"class_type": "BrushstreamLoad_reconet", "inputs": {}},
        "3": {"class_type": "BrushstreamEncodeStyle", "inputs": {"model": ["2", 0], "trained_style": "0"}},
        "4": {"class_type": "BrushstreamStylizeVideo", "inputs": {"model": ["2", 0], "style": ["3", 0],
                                                                  "video": ["1", 0]}},
        "5": {"class_type": "SaveVideo", "inputs": {"video": ["4", 0], "filename_prefix": "brushstream_video"}},
    },
    # A style trained for a few steps (Cancel keeps its checkpoint; run again to continue), then used at once.
    "train_style": {
        "1": {"class_type": "LoadImage", "inputs": {"image": CONTENT}},
        "2": {"class_type": "LoadImage", "inputs": {"image": STYLE}},
        "3": {"class_type": "BrushstreamTrainStyleModel",
              "inputs": {"recipe": "johnson", "style": ["2", 0], "name": "example_style", "steps": 30, "size": 64,
                         "preview_every": 5}},
        "4": {"class_type": "BrushstreamLoad_johnson", "inputs": {"weights_source": ["3", 0]}},
        "5": {"class_type": "BrushstreamEncodeStyle", "inputs": {"model": ["4", 0], "trained_style": "0"}},
        "6": {"class_type": "BrushstreamStylizeImage", "inputs": {"model": ["4", 0], "style": ["5", 0],
                                                                  "image": ["1", 0]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "brushstream_trained"}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}},
    },
}

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def load_object_info(source: str) -> dict:
    if source.startswith("http"):
        with urllib.request.urlopen(source, timeout=60) as r:
            return json.load(r)
    return json.loads(Path(source).read_text())


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _has_seed_control(name: str, spec: list) -> bool:
    """Whether the web page adds a 'control after generate' widget after this input: when the node asks for one,
    and on every INT named seed or noise_seed unless the node says not to."""
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "control_after_generate" in opts:
        return bool(opts["control_after_generate"])
    return spec[0] == "INT" and name in ("seed", "noise_seed")


def _input_order(info: dict) -> list[tuple[str, list, bool]]:
    order = info.get("input_order") or {g: list(info["input"].get(g, {})) for g in ("required", "optional")}
    return [(name, info["input"][group][name], group == "optional")
            for group in ("required", "optional") for name in order.get(group, [])]


def _depths(graph: dict) -> dict[str, int]:
    depth: dict[str, int] = {}

    def of(node_id: str) -> int:
        if node_id not in depth:
            links = [v[0] for v in graph[node_id]["inputs"].values() if isinstance(v, list)]
            depth[node_id] = 1 + max((of(src) for src in links), default=-1)
        return depth[node_id]
    for node_id in graph:
        of(node_id)
    return depth


def _default(spec: list):
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in opts:
        return opts["default"]
    return spec[0][0] if isinstance(spec[0], list) else (opts.get("options") or [None])[0]


def complete(graph: dict, object_info: dict) -> dict:
    """``graph`` with every required widget the graph leaves out set to its default: POST /prompt needs them all."""
    full = {}
    for node_id, node in graph.items():
        inputs = dict(node["inputs"])
        for name, spec, optional in _input_order(object_info[node["class_type"]]):
            if name not in inputs and not optional and _is_widget(spec):
                inputs[name] = _default(spec)
        full[node_id] = {"class_type": node["class_type"], "inputs": inputs}
    return full


def to_ui(graph: dict, object_info: dict) -> dict:
    """The UI-format workflow of an API-format graph: same nodes, links and widget values, laid out in columns."""
    depth, rows = _depths(graph), {}
    nodes, links = [], []
    outputs: dict[str, list[dict]] = {}
    for node_id, node in graph.items():
        info = object_info[node["class_type"]]
        outputs[node_id] = [{"name": name, "type": kind, "links": [], "slot_index": i}
                            for i, (name, kind) in enumerate(zip(info["output_name"], info["output"]))]
    for order, (node_id, node) in enumerate(sorted(graph.items(), key=lambda kv: (depth[kv[0]], int(kv[0])))):
        info = object_info[node["class_type"]]
        inputs, widgets = [], []
        for name, spec, optional in _input_order(info):
            value = node["inputs"].get(name)
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(value, list):     # a link [source node, output slot]
                link_id = len(links) + 1
                src, slot = value
                kind = object_info[graph[src]["class_type"]]["output"][slot]
                links.append([link_id, int(src), slot, int(node_id), len(inputs), kind])
                outputs[src][slot]["links"].append(link_id)
                entry = {"name": name, "type": kind, "link": link_id}
                if _is_widget(spec):          # a widget fed by a link (say a trained model's file name)
                    entry["widget"] = {"name": name}
                    widgets.append(_default(spec))   # it keeps its slot: widget values are positional
                inputs.append(entry)
            elif _is_widget(spec):
                widgets.append(value if value is not None else _default(spec))
                if opts.get("image_upload"):
                    widgets.append("image")          # the upload button's own widget value
                if _has_seed_control(name, spec):
                    widgets.append("fixed")
            elif not optional:
                inputs.append({"name": name, "type": spec[0], "link": None})
        column = depth[node_id]
        rows[column] = rows.get(column, 0) + 1
        nodes.append({"id": int(node_id), "type": node["class_type"], "pos": [40 + 360 * column, 40 + 420 * (rows[column] - 1)],
                      "size": [320, 280], "flags": {}, "order": order, "mode": 0, "inputs": inputs,
                      "outputs": outputs[node_id], "properties": {"Node name for S&R": node["class_type"]},
                      "widgets_values": widgets})
    return {"last_node_id": max(int(k) for k in graph), "last_link_id": len(links), "nodes": nodes, "links": links,
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


def write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--object-info", required=True, help="URL of a running ComfyUI's /object_info, or a saved copy")
    args = ap.parse_args()
    info = load_object_info(args.object_info)
    OUT.mkdir(exist_ok=True)
    for name, graph in WORKFLOWS.items():
        missing = sorted({n["class_type"] for n in graph.values()} - set(info))
        if missing:
            raise SystemExit(f"{args.object_info}: no node types {', '.join(missing)} (is the pack loaded?)")
        graph = complete(graph, info)
        write_json(OUT / f"{name}_api.json", graph)
        write_json(OUT / f"{name}.json", to_ui(graph, info))
        print(f"{OUT / name}.json, {name}_api.json")


if __name__ == "__main__":
    main()
