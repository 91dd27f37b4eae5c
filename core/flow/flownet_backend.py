"""The ``flownet`` flow backend: a FlowNetS or FlowNetC (Dosovitskiy et al., ICCV 2015; flownet.py) trained by
``brushstream train flownets|flownetc``, rebuilt from its own file's metadata and verified by core/hub/weights.py.

Runs in eval and inference mode at the frames' own size (padded to multiples of 64 inside, cropped back) and returns
float32 flow in pixels on the frames' device. Deviation from the paper's use: no resizing of the input to the
training resolution, so very large motions in big frames may exceed what the trained model saw.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..errors import BrushstreamError
from ..hub import weights as weight_store
from . import register_flow

DEFAULT_WEIGHTS = "flownetc_small"
DEFAULT_SCALE = 1.0   # fraction of the frame size the network works at (bench/flow_quality.py weighs it)


def load_flownet(weights: str | os.PathLike = DEFAULT_WEIGHTS) -> tuple[torch.nn.Module, dict[str, str]]:
    """A frozen FlowNet rebuilt from a manifest name or .safetensors file: (network in eval mode, metadata)."""
    from ..nets.pretrained import trained_network
    from .flownet import ARCHS

    source = os.fspath(weights)
    if not weight_store.looks_like_path(source) and source not in weight_store.load_manifest():
        raise BrushstreamError(f"flownet: no weights named {source!r} in weights_manifest.json yet; train a model with "
                               f"`brushstream train flownetc -o FILE.safetensors` and pass weights=FILE (--weights)")
    meta = weight_store.read_metadata(weight_store.resolve(source))
    arch = meta.get("arch")
    if arch not in ARCHS:
        raise BrushstreamError(f"{source}: holds a {arch or 'unknown'} network, not a FlowNet "
                               f"({' or '.join(ARCHS)})")
    net, meta, _ = trained_network(source, arch, ARCHS[arch])
    return net, meta


@register_flow("flownet")
class FlowNetFlow:
    name = "flownet"

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                 scale: float = DEFAULT_SCALE):
        self.weights = os.fspath(weights) if weights is not None else DEFAULT_WEIGHTS
        if not 0.1 <= float(scale) <= 1.0:
            raise BrushstreamError(f"flownet: scale must be between 0.1 and 1, got {scale}")
        self.scale = float(scale)
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise BrushstreamError(f"flownet: unknown device {device!r}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BrushstreamError("flownet: device cuda asked for, but no CUDA device is available")
        self.net, self.metadata = load_flownet(self.weights)
        self.net.to(self.device)

    def __repr__(self) -> str:
        return (f"FlowNetFlow(weights={self.weights!r}, arch={self.metadata.get('arch')!r}, scale={self.scale}, "
                f"device={str(self.device)!r})")

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise BrushstreamError(f"flownet: needs two (B, 3, H, W) frames of one size, got {tuple(a.shape)} "
                                   f"and {tuple(b.shape)}")
        h, w, out_device = *a.shape[-2:], a.device
        a, b = (t.to(self.device, torch.float32) for t in (a, b))
        with torch.inference_mode():
            if self.scale < 1.0:   # work on smaller frames: faster, and large motions shrink into the trained range
                small = (max(8, round(h * self.scale)), max(8, round(w * self.scale)))
                a, b = (F.interpolate(t, size=small, mode="area") for t in (a, b))
            flow = self.net(a, b)
            if flow.shape[-2:] != (h, w):
                gain = torch.tensor([w / flow.shape[-1], h / flow.shape[-2]], device=flow.device).view(1, 2, 1, 1)
                flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False) * gain
        return flow.float().to(out_device)
