"""FlowNet's building blocks (Dosovitskiy et al., ICCV 2015): convolution + LeakyReLU 0.1, the channel plan at a
width, and the refinement part (section 3, figure 3) shared by FlowNetS and FlowNetC.

Channels as in the released models at width 1 (conv1 64, conv2 128, conv3 256, conv4/5 512, conv6 1024, conv_redir
32; upconvolutions 512, 256, 128, 64); ``width`` scales them all (at least 2 each). Flow predictions are 3x3
convolutions to 2 channels; coarser predictions reach the next scale through a learned 4x4/2 transposed
convolution, as released. Weights start from Kaiming-normal (LeakyReLU 0.1) with zero biases, as FlowNet's PyTorch
ports do.
"""
from __future__ import annotations

import torch
from torch import nn

PAPER_CHANNELS = {"conv1": 64, "conv2": 128, "conv3": 256, "conv4": 512, "conv5": 512, "conv6": 1024, "redir": 32,
                  "deconv5": 512, "deconv4": 256, "deconv3": 128, "deconv2": 64}


def channels(width: float) -> dict[str, int]:
    """The released channel plan scaled by ``width``."""
    if not width > 0:
        raise ValueError(f"FlowNet width must be positive, got {width}")
    return {k: max(2, round(v * width)) for k, v in PAPER_CHANNELS.items()}


def conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2),
                         nn.LeakyReLU(0.1, inplace=True))


def deconv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.LeakyReLU(0.1, inplace=True))


def predict_flow(cin: int) -> nn.Conv2d:
    return nn.Conv2d(cin, 2, 3, 1, 1)


def upsample_flow() -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False)


class Refinement(nn.Module):
    """conv6_1 and the skip maps (conv2, conv3_1, conv4_1, conv5_1) -> [flow2, flow3, flow4, flow5, flow6]."""

    def __init__(self, skips: tuple[int, int, int, int], top: int, width: float):
        super().__init__()
        c = channels(width)
        ups = (c["deconv5"], c["deconv4"], c["deconv3"], c["deconv2"])
        self.predict6 = predict_flow(top)
        cin = top
        for level, skip, up in zip((5, 4, 3, 2), skips[::-1], ups):
            setattr(self, f"deconv{level}", deconv(cin, up))
            setattr(self, f"upflow{level + 1}", upsample_flow())
            cin = skip + up + 2
            setattr(self, f"predict{level}", predict_flow(cin))

    def forward(self, c2, c3, c4, c5, c6) -> list[torch.Tensor]:
        x, flow = c6, self.predict6(c6)
        flows = [flow]
        for level, skip in zip((5, 4, 3, 2), (c5, c4, c3, c2)):
            up = getattr(self, f"deconv{level}")(x)
            x = torch.cat((skip, up, getattr(self, f"upflow{level + 1}")(flow)), 1)
            flow = getattr(self, f"predict{level}")(x)
            flows.append(flow)
        return flows[::-1]


def init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
