"""Farneback's polynomial-expansion optical flow (SCIA 2003) through OpenCV: a second, independent
backend, so the warping-error metric can grade a video made with DIS flow by a different algorithm.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from . import register_flow
from .dis import gray_u8


@register_flow("farneback")
class FarnebackFlow:
    name = "farneback"

    def __init__(self, levels: int = 5, window: int = 15, iterations: int = 3):
        self.levels, self.window, self.iterations = int(levels), int(window), int(iterations)

    def __repr__(self) -> str:
        return f"FarnebackFlow(levels={self.levels}, window={self.window}, iterations={self.iterations})"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        flow = cv2.calcOpticalFlowFarneback(gray_u8(a, None), gray_u8(b, None), None, 0.5, self.levels,
                                            self.window, self.iterations, 5, 1.1, 0)
        return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).unsqueeze(0).to(a.device)
