"""Dense Inverse Search optical flow (Kroeger et al., ECCV 2016) through OpenCV's DISOpticalFlow.

Runs on a grayscale copy at ``scale`` of the frame size and upsamples the flow (values scaled with it):
the temporal blend and the warping-error figures in bench/video_temporal.py decide the defaults.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..errors import BrushstreamError
from . import register_flow

PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
           "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
DEFAULTS = {"preset": "medium", "scale": 1.0}


def gray_u8(frame: torch.Tensor, size: tuple[int, int] | None) -> np.ndarray:
    rgb = (frame[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if size is not None and size != gray.shape[::-1]:
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


@register_flow("dis")
class DISFlow:
    name = "dis"

    def __init__(self, preset: str = DEFAULTS["preset"], scale: float = DEFAULTS["scale"]):
        if preset not in PRESETS:
            raise BrushstreamError(f"DIS flow preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        if not 0.1 <= scale <= 1.0:
            raise BrushstreamError(f"DIS flow scale must be between 0.1 and 1, got {scale}")
        self.preset, self.scale = preset, float(scale)
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])

    def __repr__(self) -> str:
        return f"DISFlow(preset={self.preset!r}, scale={self.scale})"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h, w = a.shape[-2:]
        if max(h, w) < 12:
            raise BrushstreamError(f"DIS flow needs frames with a side of at least 12 px, got {w}x{h}")
        small = None
        if self.scale < 1.0:
            # OpenCV's DIS needs a side of 12 px or more: a small frame is not shrunk below 16
            small = (min(w, max(16, round(w * self.scale))), min(h, max(16, round(h * self.scale))))
        flow = self._dis.calc(gray_u8(a, small), gray_u8(b, small), None)
        if small is not None:
            fx, fy = w / small[0], h / small[1]
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow[..., 0] *= fx
            flow[..., 1] *= fy
        return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).unsqueeze(0).to(a.device)
