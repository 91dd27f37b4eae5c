"""The ``flownet`` flow backend: a FlowNetS or FlowNetC (Dosovitskiy et al., ICCV 2015; flownet.py) trained by
``brushstream train flownets|flownetc``, rebuilt from its own file's metadata and verified by core/weights.py.

Runs in eval and inference mode at the frames' own size (padded to multiples of 64 inside, cropped back) and returns
float32 flow in pixels on the frames' device. Deviation from the paper's use: no resizing of the input to the
training resolution, so very large motions in big frames may exceed what the trained model saw.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import weights as weight_store
from ..errors import BrushstreamError
from . import register_flow

DEFAULT_WEIGHTS = "flownetc_small"


def _looks_like_path(text: str) -> bool:
    return bool(Path(text).suffix) or os.sep in text or Path(text).exists()


def load_flownet(weights: str | os.PathLike = DEFAULT_WEIGHTS) -> tuple[torch.nn.Module, dict[str, str]]:
    """A frozen FlowNet rebuilt from a manifest name or .safetensors file: (network in eval mode, metadata)."""
    from ..nets.pretrained import trained_network
    from .flownet import ARCHS

    source = os.fspath(weights)
    if not _looks_like_path(source) and source not in weight_store.load_manifest():
        raise BrushstreamError(f"flownet: no weights named {source!r} in weights_manifest.json yet; train a model with "
                               f"`brushstream train flownetc -o FILE.safetensors` and pass weights=FILE (--weights)")
    meta = weight_store.read_metadata(weight_store.resolve(source))
    arch = meta.get("arch")
    if arch not in ARCHS:
        raise BrushstreamError(f"{source}: holds a {arch or 'unknown'} network, not a FlowNet "
                               f"({' or '.join(ARCHS)})")
    net, meta, _ = trained_network(source, arch)
    return net, meta


@register_flow("flownet")
class FlowNetFlow:
    name = "flownet"

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        self.weights = os.fspath(weights) if weights is not None else DEFAULT_WEIGHTS
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise BrushstreamError(f"flownet: unknown device {device!r}") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise BrushstreamError("flownet: device cuda asked for, but no CUDA device is available")
        self.net, self.metadata = load_flownet(self.weights)
        self.net.to(self.device)

    def __repr__(self) -> str:
        return f"FlowNetFlow(weights={self.weights!r}, arch={self.metadata.get('arch')!r}, device={str(self.device)!r})"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
            raise BrushstreamError(f"flownet: needs two (B, 3, H, W) frames of one size, got {tuple(a.shape)} "
                                   f"and {tuple(b.shape)}")
        with torch.inference_mode():
            flow = self.net(a.to(self.device, torch.float32), b.to(self.device, torch.float32))
        return flow.float().to(a.device)
