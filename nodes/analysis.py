"""The logic behind the Optical Flow and Evaluate Stylization nodes (no ComfyUI imports)."""
from __future__ import annotations

import json

import torch

from ..core.errors import BrushstreamError
from ..core.flow import get_flow
from ..core.flow.visualise import flow_to_rgb
from ..core.ops.resize import resize_to
from . import host
from .convert import to_comfy, to_core


def optical_flow(frames: torch.Tensor, backend: str = "dis", flownet_weights: str = "") -> torch.Tensor:
    """IMAGE batch of B >= 2 consecutive frames -> IMAGE batch of B - 1 flow pictures (frame t -> t + 1; hue is the
    direction, saturation the speed, all on the batch's largest speed so pictures compare). ``flownet_weights``:
    a trained FlowNet (`brushstream train flownets|flownetc`) for the flownet backend, as a file in the model folder,
    a manifest name, an hf:// reference or a path."""
    x = to_core(frames)
    if x.shape[0] < 2:
        raise BrushstreamError(f"optical flow needs at least 2 frames in the batch, got {x.shape[0]}")
    weights = (flownet_weights or "").strip()
    if weights and backend != "flownet":
        raise BrushstreamError(f"flownet_weights is for the flownet backend, not {backend}")
    flow = get_flow(backend, **({"weights": host.model_file_path(weights) or weights} if weights else {}))
    progress = host.Progress(x.shape[0] - 1)
    fields = []
    for t in range(x.shape[0] - 1):
        host.check_interrupt()
        fields.append(flow(x[t:t + 1], x[t + 1:t + 2]).float().cpu())
        progress.update(t + 1)
    fields = torch.cat(fields)
    top = float(fields.norm(dim=1).amax()) or 1.0
    return to_comfy(flow_to_rgb(fields, max_magnitude=top))


def evaluate_stylization(content: torch.Tensor, stylized: torch.Tensor, style: torch.Tensor | None = None,
                         size: int = 384) -> dict:
    """Distances of a stylized batch, as the project's benches measure them: content distance (VGG16 relu3_3,
    relative), and with a style image the Gram and mean/std style ratios (output's distance to the style over the
    photo's); for B >= 2 frames also the warping error (Lai et al. 2018) of the output and of the input clip."""
    from ..core.metrics import QualityMetrics, WarpingError

    c, s = to_core(content), to_core(stylized)
    if c.shape[0] != s.shape[0]:
        raise BrushstreamError(f"{c.shape[0]} content images but {s.shape[0]} stylized ones; they must pair up")
    scale = size / max(c.shape[-2:])
    hw = (max(16, round(c.shape[-2] * scale)), max(16, round(c.shape[-1] * scale)))
    c, s = resize_to(c, hw), resize_to(s, hw)
    metrics = QualityMetrics()
    targets = metrics.style_targets(resize_to(to_core(style)[:1], hw)) if style is not None else None
    rows = []
    for i in range(c.shape[0]):
        host.check_interrupt()
        if targets is not None:
            rows.append(metrics.evaluate(s[i:i + 1], c[i:i + 1], targets))
        else:
            rows.append({"content": metrics.content_distance(s[i:i + 1], c[i:i + 1])})
    report = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    report["images"] = len(rows)
    if c.shape[0] >= 2:
        warp = WarpingError()
        for i in range(c.shape[0]):
            host.check_interrupt()
            warp.update(c[i:i + 1], s[i:i + 1])
        report.update(warp.summary())
    return report


def report_text(report: dict) -> str:
    return json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in report.items()}, indent=1)
