"""FlowNetS and FlowNetC (Dosovitskiy, Fischer, Ilg et al., "FlowNet: Learning Optical Flow with Convolutional
Networks", ICCV 2015, figures 2 and 3 and section 3's refinement), shaped like the authors' released models.

Contracting part: conv1 7x7/2, conv2 5x5/2, conv3 5x5/2, conv3_1, conv4 /2, conv4_1, conv5 /2, conv5_1, conv6 /2,
conv6_1 (as released), LeakyReLU 0.1 after every convolution. FlowNetS stacks the two frames (6 channels); FlowNetC
runs conv1-conv3 as a siamese tower on each frame, correlates the two conv3 maps (max displacement 20, stride2 2,
kernel 1: 441 channels, then LeakyReLU as released) and concatenates a 1x1 32-channel ``conv_redir`` of the first
frame's conv3. Refinement (flownet_blocks.py): 4x4/2 upconvolutions, each concatenated with the contracting map of
its size and the upsampled coarser prediction, predicting flow at 1/64 .. 1/4 (flow6 .. flow2).

The network predicts flow / ``div_flow`` (20, as the released models). Training mode returns [flow2, ..., flow6] in
those units; eval mode returns flow2 bilinearly upsampled x4 times ``div_flow``: flow in pixels from frame a to b.
Deviations: ``width`` scales every convolution's channels (1.0 = the paper's; the correlation keeps its channels);
``max_displacement`` and ``corr_stride`` (the paper's 20 and stride2 2) set the displacement grid at conv3, in steps
of 8 input pixels times ``corr_stride``: small crops with small motions need a shorter, finer grid than the paper's
+-160 px in 16 px steps; inputs in [0, 1] have the pair's per-channel mean subtracted (as FlowNet 2.0's PyTorch port
does), so a brightness offset common to both frames does not matter.
Eval mode takes any size: the frames are padded (replicate) to multiples of 64 and the flow cropped back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .correlation import Correlation
from .flownet_blocks import Refinement, channels, conv, init_weights

STRIDE = 64          # conv6 is at 1/64: training inputs must be multiples of it, eval inputs are padded to them
DIV_FLOW = 20.0


def normalise_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Subtract the per-channel mean of both frames together (per sample)."""
    mean = (a.mean((2, 3), keepdim=True) + b.mean((2, 3), keepdim=True)) / 2
    return a - mean, b - mean


class FlowNet(nn.Module):
    """The shared part: conv3_1 .. conv6_1, the refinement and the train/eval outputs. Subclasses set ``head``."""
    arch = ""

    def __init__(self, width: float, div_flow: float, conv3_in: int, conv2_out: int):
        super().__init__()
        self.width, self.div_flow = float(width), float(div_flow)
        c = channels(width)
        self.conv3_1 = conv(conv3_in, c["conv3"], 3)
        self.conv4 = conv(c["conv3"], c["conv4"], 3, 2)
        self.conv4_1 = conv(c["conv4"], c["conv4"], 3)
        self.conv5 = conv(c["conv4"], c["conv5"], 3, 2)
        self.conv5_1 = conv(c["conv5"], c["conv5"], 3)
        self.conv6 = conv(c["conv5"], c["conv6"], 3, 2)
        self.conv6_1 = conv(c["conv6"], c["conv6"], 3)
        self.refine = Refinement((conv2_out, c["conv3"], c["conv4"], c["conv5"]), c["conv6"], width)

    def config(self) -> dict:
        return {"width": self.width, "div_flow": self.div_flow}

    def head(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised frames -> (conv2 map for the refinement, conv3_1's input)."""
        raise NotImplementedError

    def predictions(self, a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
        """[flow2, flow3, flow4, flow5, flow6] in units of ``div_flow`` px, at 1/4 .. 1/64 of the input."""
        c2, x = self.head(*normalise_pair(a, b))
        c3 = self.conv3_1(x)
        c4 = self.conv4_1(self.conv4(c3))
        c5 = self.conv5_1(self.conv5(c4))
        c6 = self.conv6_1(self.conv6(c5))
        return self.refine(c2, c3, c4, c5, c6)

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        """Training: the five predictions (inputs must be multiples of 64). Eval: (B, 2, H, W) flow in pixels."""
        h, w = a.shape[-2:]
        if self.training:
            if h % STRIDE or w % STRIDE:
                raise ValueError(f"FlowNet trains on sizes that are multiples of {STRIDE}, got {h}x{w}")
            return self.predictions(a, b)
        ph, pw = -h % STRIDE, -w % STRIDE
        if ph or pw:   # replicate-pad right and bottom: pixel positions, and so flow values, stay as they are
            a, b = (F.pad(t, (0, pw, 0, ph), mode="replicate") for t in (a, b))
        flow2 = self.predictions(a, b)[0]
        flow = F.interpolate(flow2, scale_factor=4, mode="bilinear", align_corners=False) * self.div_flow
        return flow[..., :h, :w]


class FlowNetS(FlowNet):
    """FlowNetSimple: both frames stacked on the channel axis."""
    arch = "flownets"

    def __init__(self, width: float = 1.0, div_flow: float = DIV_FLOW):
        c = channels(width)
        super().__init__(width, div_flow, c["conv3"], c["conv2"])
        self.conv1 = conv(6, c["conv1"], 7, 2)
        self.conv2 = conv(c["conv1"], c["conv2"], 5, 2)
        self.conv3 = conv(c["conv2"], c["conv3"], 5, 2)
        init_weights(self)

    def head(self, a, b):
        c2 = self.conv2(self.conv1(torch.cat((a, b), 1)))
        return c2, self.conv3(c2)


class FlowNetC(FlowNet):
    """FlowNetCorr: siamese conv1-conv3, correlation of the two conv3 maps plus conv_redir of the first."""
    arch = "flownetc"

    def __init__(self, width: float = 1.0, max_displacement: int = 20, div_flow: float = DIV_FLOW,
                 corr_stride: int = 2):
        c = channels(width)
        corr = Correlation(max_displacement=max_displacement, stride2=corr_stride, kernel_size=1)
        super().__init__(width, div_flow, corr.out_channels + c["redir"], c["conv2"])
        self.max_displacement, self.corr_stride = int(max_displacement), int(corr_stride)
        self.conv1 = conv(3, c["conv1"], 7, 2)
        self.conv2 = conv(c["conv1"], c["conv2"], 5, 2)
        self.conv3 = conv(c["conv2"], c["conv3"], 5, 2)
        self.corr = corr
        self.conv_redir = conv(c["conv3"], c["redir"], 1)
        init_weights(self)

    def config(self) -> dict:
        return {**super().config(), "max_displacement": self.max_displacement, "corr_stride": self.corr_stride}

    def head(self, a, b):
        n = a.shape[0]
        c2 = self.conv2(self.conv1(torch.cat((a, b), 0)))    # one pass through the shared tower for both frames
        c3 = self.conv3(c2)
        a2, a3, b3 = c2[:n], c3[:n], c3[n:]
        corr = F.leaky_relu(self.corr(a3, b3), 0.1)
        return a2, torch.cat((self.conv_redir(a3), corr), 1)


ARCHS = {"flownets": FlowNetS, "flownetc": FlowNetC}
