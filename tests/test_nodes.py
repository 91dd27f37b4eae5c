"""The ComfyUI node pack seen from outside ComfyUI: importable without side effects, IMAGE layout respected."""
import importlib
import subprocess
import sys
from pathlib import Path

import torch

from brushstream.core.image import load_image
from brushstream.core.ops.resize import resize_long_side

from .conftest import SHARED_DATA


def test_importing_the_pack_loads_no_weights():
    code = ("import brushstream; from brushstream.core.nets import pretrained; from brushstream.core import weights; "
            "assert pretrained._read.cache_info().currsize == 0; "
            "assert weights._sha256_cached.cache_info().currsize == 0; print(len(brushstream.NODE_CLASS_MAPPINGS))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and int(proc.stdout.strip()) >= 5, proc.stderr  # generic node + one per method


def test_loads_the_way_comfyui_loads_a_custom_node_folder():
    """ComfyUI imports custom_nodes/<folder>/__init__.py under the folder's own name (often with a dash)."""
    root = Path(__file__).resolve().parents[1]
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('Brushstream-main', {str(root / '__init__.py')!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['Brushstream-main'] = module\n"
            "spec.loader.exec_module(module)\n"
            "print(sorted(module.NODE_CLASS_MAPPINGS))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert "BrushstreamArbitraryStyle" in proc.stdout


def test_root_package_exposes_node_mappings_and_api_without_loading_weights():
    sys.modules.pop("brushstream", None)
    pkg = importlib.import_module("brushstream")
    assert "BrushstreamArbitraryStyle" in pkg.NODE_CLASS_MAPPINGS
    assert set(pkg.NODE_CLASS_MAPPINGS) == set(pkg.NODE_DISPLAY_NAME_MAPPINGS)
    assert callable(pkg.stylize) and callable(pkg.load)


def test_arbitrary_style_node_keeps_comfy_layout_and_batch():
    from brushstream.nodes.stylize_nodes import BrushstreamArbitraryStyle

    spec = BrushstreamArbitraryStyle.INPUT_TYPES()["required"]
    assert spec["image"] == ("IMAGE",) and spec["style"] == ("IMAGE",)
    photo = resize_long_side(load_image(SHARED_DATA / "content_eval" / "skimage_rocket.jpg").image, 64)
    style = resize_long_side(load_image(SHARED_DATA / "styles" / "mosaic.jpg").image, 64)
    batch = torch.cat([photo, photo.flip(-1)]).permute(0, 2, 3, 1)      # (B, H, W, C) as ComfyUI gives it
    (out,) = BrushstreamArbitraryStyle().stylize(batch, style.permute(0, 2, 3, 1), "adain", 1.0, False)
    assert out.shape == batch.shape
    assert (out - batch).abs().mean() > 0.05             # it was stylized
    (alone,) = BrushstreamArbitraryStyle().stylize(batch[1:], style.permute(0, 2, 3, 1), "adain", 1.0, False)
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=0)  # each frame is stylized on its own


def _node_inputs():
    photo = resize_long_side(load_image(SHARED_DATA / "content_eval" / "skimage_rocket.jpg").image, 64)
    style = resize_long_side(load_image(SHARED_DATA / "styles" / "mosaic.jpg").image, 64)
    return photo.permute(0, 2, 3, 1), style.permute(0, 2, 3, 1)


def test_node_honours_strength_and_preserve_color():
    """Guards: the node ignores strength and preserve_color."""
    from brushstream.nodes.stylize_nodes import BrushstreamArbitraryStyle

    photo, style = _node_inputs()
    node = BrushstreamArbitraryStyle()
    (full,) = node.stylize(photo, style, "adain", 1.0, False)
    (light,) = node.stylize(photo, style, "adain", 0.2, False)
    assert (light - photo).abs().mean() < 0.7 * (full - photo).abs().mean()
    (kept,) = node.stylize(photo, style, "adain", 1.0, True)
    colour = lambda x: x.mean(dim=(1, 2))  # noqa: E731
    assert (colour(kept) - colour(photo)).norm() < 0.5 * (colour(full) - colour(photo)).norm()


def test_method_nodes_are_generated_from_declared_options():
    from brushstream.core.methods import STYLIZE_OPTIONS, available
    from brushstream.nodes.stylize_nodes import NODE_CLASS_MAPPINGS

    for name, cls in available().items():
        node = NODE_CLASS_MAPPINGS[f"BrushstreamStylize_{name}"]
        types = node.INPUT_TYPES()
        spec = types["required"]
        shown = [o for o in (*cls.options, *STYLIZE_OPTIONS) if not o.texture_only
                 and not (o.name == "precision" and cls.capabilities.optimisation)]
        # a method that takes a style image or one of its trained styles has both as optional inputs
        both = cls.capabilities.arbitrary_style and cls.capabilities.trained_styles
        assert set(types.get("optional", {})) == ({"style", "trained_style"} if both else set()), name
        assert set(spec) == {"image", *(() if both else ("style",)), *(o.name for o in shown)}, name
        for opt in shown:
            default = spec[opt.name][1]["default"]
            assert default == (",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else opt.default)
    swap = NODE_CLASS_MAPPINGS["BrushstreamStylize_swap"].INPUT_TYPES()["required"]["patch_size"]
    assert swap[0] == "INT" and swap[1]["step"] == 2 and (swap[1]["min"], swap[1]["max"]) == (1, 9)


def test_method_node_passes_its_options_to_the_method():
    from brushstream.nodes.stylize_nodes import NODE_CLASS_MAPPINGS

    photo, style = _node_inputs()
    node = NODE_CLASS_MAPPINGS["BrushstreamStylize_wct"]()
    common = dict(strength=1.0, preserve_color=False, precision="fp32")
    (one,) = node.stylize(photo, style, levels="relu3_1", **common)
    (three,) = node.stylize(photo, style, levels="relu3_1,relu2_1,relu1_1", **common)
    assert (one - three).abs().mean() > 0.005


def test_gatys_node_runs_under_comfyuis_inference_mode():
    """ComfyUI executes nodes under torch.inference_mode(); the optimising method must still optimise."""
    from brushstream.nodes.stylize_nodes import NODE_CLASS_MAPPINGS

    photo, style = _node_inputs()
    node = NODE_CLASS_MAPPINGS["BrushstreamStylize_gatys"]()
    inputs = {o: v for o, v in dict(strength=1.0, preserve_color=False, steps=3, optimizer="lbfgs",
                                    lr=0.02, init="content", scales="1.0", style_layers="relu1_1,relu2_1",
                                    content_layers="relu2_2", style_weight=5.0, content_weight=1.0, tv_weight=0.0,
                                    seed=0).items()}
    with torch.inference_mode():
        (out,) = node.stylize(photo[:, :32, :32].clone(), style, **inputs)
    assert out.shape == (1, 32, 32, 3) and (out - photo[:, :32, :32]).abs().mean() > 0.005
