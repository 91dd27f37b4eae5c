"""The ComfyUI node pack seen from outside ComfyUI: importable without side effects, IMAGE layout respected."""
import importlib
import subprocess
import sys

import torch

from brushstream.core.image import load_image
from brushstream.core.ops.resize import resize_long_side

from .conftest import SHARED_DATA


def test_importing_the_pack_loads_no_weights():
    code = ("import brushstream; from brushstream.core.nets import pretrained; "
            "assert pretrained._cached.cache_info().currsize == 0; print(len(brushstream.NODE_CLASS_MAPPINGS))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr


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
