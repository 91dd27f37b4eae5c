"""Fast Video Multi-Style Transfer (Gao, Gu, Chen, Zhou & Dou, WACV 2020): one feed-forward network for many
styles that is stable on video, at a width this CPU can train and stream.

- Multi-instance normalisation (MIN, the paper's section 3.1): every normalisation layer is an instance norm with
  one affine set (gamma, beta) per style; a style is chosen by index, and several are blended by mixing their
  affine sets with weights (the style interpolation the paper shows).
- ConvLSTM (Shi et al. 2015) at the 1/4-resolution bottleneck, between the encoder's and the decoder's residual
  blocks: its hidden and cell state are carried from frame to frame, so the network sees the stream's history
  instead of one frame.
- Encoder-decoder as ReCoNet's real-time width (core/nets/reconet.py, the same authors' earlier network): two
  strided convolutions, depthwise-separable residual blocks, one separable upsampling and a sub-pixel head.

Deviations (paper value in brackets): the project's real-time width (channels 48 at 1/4, separable convolutions)
[full convolutions, 128 channels at 1/4 as Johnson's net]; 2 + 2 residual blocks around the ConvLSTM [5 residual
blocks, ConvLSTM after them]; a residual connection around the ConvLSTM whose output projection starts at zero,
so a fresh network is a per-frame stylizer and learns how much history to use [the ConvLSTM output feeds the
decoder directly].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reconet import SubpixelHead, scaled_tanh

STRIDE = 4
ARCH = "video_multistyle"


class MultiInstanceNorm(nn.Module):
    """Instance norm with one (gamma, beta) per style; ``weights`` (B, S) mixes the styles' affine sets."""

    def __init__(self, channels: int, styles: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(styles, channels))
        self.beta = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gamma = (weights @ self.gamma)[:, :, None, None]
        beta = (weights @ self.beta)[:, :, None, None]
        return F.instance_norm(x) * gamma + beta


class ConvMIN(nn.Module):
    """Convolution (full or depthwise-separable), multi-instance norm, ReLU unless ``relu`` is False."""

    def __init__(self, cin: int, cout: int, styles: int, stride: int = 1, separable: bool = False, relu: bool = True):
        super().__init__()
        if separable:
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                                      nn.Conv2d(cin, cout, 1, bias=False))
        else:
            self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride, bias=False))
        self.norm = MultiInstanceNorm(cout, styles)
        self.relu = relu

    def forward(self, x, weights):
        x = self.norm(self.conv(x), weights)
        return F.relu(x) if self.relu else x


class ResidualMIN(nn.Module):
    def __init__(self, channels: int, styles: int):
        super().__init__()
        self.first = ConvMIN(channels, channels, styles, separable=True)
        self.second = ConvMIN(channels, channels, styles, separable=True, relu=False)

    def forward(self, x, weights):
        return x + self.second(self.first(x, weights), weights)


class ConvLSTM(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015, without peepholes): the four gates from one 3x3 convolution of
    [input, hidden]; forget-gate bias starts at 1 (Jozefowicz et al. 2015) so the cell keeps its memory early on."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(channels + hidden, 4 * hidden, 3, padding=1)
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[hidden:2 * hidden].fill_(1.0)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden, *x.shape[-2:])
            state = (zeros, zeros)
        h, c = state
        i, f, g, o = self.gates(torch.cat((x, h), 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class VideoMultiStyleNet(nn.Module):
    """RGB [0, 1] (B, 3, H, W) (multiples of 4), style weights (B, S) and the previous ConvLSTM state (None at a
    stream's start) -> (stylized RGB, new state). ``forward_sequence`` runs T frames in order."""

    def __init__(self, styles: int, channels: int = 48, blocks: int = 2):
        super().__init__()
        if styles < 1:
            raise ValueError(f"a multi-style network needs at least one style, got {styles}")
        self.styles, self.channels, self.blocks = int(styles), int(channels), int(blocks)
        c, half = self.channels, max(self.channels // 3, 8)
        self.down1 = ConvMIN(3, half, styles, stride=2)
        self.down2 = ConvMIN(half, c, styles, stride=2)
        self.encoder = nn.ModuleList(ResidualMIN(c, styles) for _ in range(blocks))
        self.lstm = ConvLSTM(c, c)
        self.project = nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        self.decoder = nn.ModuleList(ResidualMIN(c, styles) for _ in range(blocks))
        self.up = ConvMIN(c, half, styles, separable=True)
        self.head = SubpixelHead(half)

    def config(self) -> dict:
        return {"styles": self.styles, "channels": self.channels, "blocks": self.blocks}

    def style_weights(self, index_or_weights, batch: int, device, dtype) -> torch.Tensor:
        """An int, a sequence of S weights or a (B, S) tensor -> (B, S) weights on ``device``."""
        if isinstance(index_or_weights, int):
            w = torch.zeros(self.styles, device=device, dtype=dtype)
            w[index_or_weights] = 1.0
        else:
            w = torch.as_tensor(index_or_weights, device=device, dtype=dtype)
        if w.dim() == 1:
            w = w.expand(batch, -1)
        if w.shape != (batch, self.styles):
            raise ValueError(f"style weights must be (B={batch}, S={self.styles}), got {tuple(w.shape)}")
        return w

    def forward(self, content: torch.Tensor, weights: torch.Tensor, state=None):
        w = weights.to(content.dtype)
        x = self.down2(self.down1(content, w), w)
        for block in self.encoder:
            x = block(x, w)
        h, state = self.lstm(x, state)
        x = x + self.project(h)
        for block in self.decoder:
            x = block(x, w)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return scaled_tanh(self.head(self.up(x, w))), state

    def forward_sequence(self, frames: torch.Tensor, weights: torch.Tensor, state=None) -> torch.Tensor:
        """(B, T, 3, H, W) frames in order -> (B, T, 3, H, W) outputs, the state carried across T."""
        outs = []
        for t in range(frames.shape[1]):
            y, state = self(frames[:, t], weights, state)
            outs.append(y)
        return torch.stack(outs, 1)


def start_from_reconet(net: VideoMultiStyleNet, reconet: dict[str, torch.Tensor]) -> None:
    """Copy a real-time ReCoNet's weights (core/nets/reconet.py, 4 residual blocks at ``net.channels``) into ``net``,
    every style's affine set taking ReCoNet's: with the ConvLSTM's projection at zero the network then is that ReCoNet
    for every style, a trained stylizer that multi-style training only has to tell apart. The ReCoNet's scale-only
    last norm of each residual block becomes the block's second affine set (gamma = scale, beta = 0)."""
    if net.blocks * 2 != 4:
        raise ValueError(f"a real-time ReCoNet has 4 residual blocks; this network has {2 * net.blocks}")
    target = net.state_dict()

    def put(name: str, value: torch.Tensor) -> None:
        if name.endswith(("gamma", "beta")):
            value = value.reshape(1, -1).expand_as(target[name])
        if target[name].shape != value.shape:
            raise ValueError(f"{name}: shape {tuple(value.shape)} does not fit {tuple(target[name].shape)}")
        target[name] = value.to(target[name].dtype).clone()

    for i, down in ((0, "down1"), (1, "down2")):
        put(f"{down}.conv.1.weight", reconet[f"encoder.{i}.1.weight"])
        put(f"{down}.norm.gamma", reconet[f"encoder.{i}.2.weight"])
        put(f"{down}.norm.beta", reconet[f"encoder.{i}.2.bias"])
    blocks = [f"encoder.{i}" for i in range(net.blocks)] + [f"decoder.{i}" for i in range(net.blocks)]
    for source, block in zip(range(2, 6), blocks):
        for part in ("first", "second"):
            put(f"{block}.{part}.conv.0.weight", reconet[f"encoder.{source}.{part}.depthwise.weight"])
            put(f"{block}.{part}.conv.1.weight", reconet[f"encoder.{source}.{part}.pointwise.weight"])
        put(f"{block}.first.norm.gamma", reconet[f"encoder.{source}.first.norm.weight"])
        put(f"{block}.first.norm.beta", reconet[f"encoder.{source}.first.norm.bias"])
        put(f"{block}.second.norm.gamma", reconet[f"encoder.{source}.scale"])
        put(f"{block}.second.norm.beta", torch.zeros_like(reconet[f"encoder.{source}.scale"]).flatten())
    put("up.conv.0.weight", reconet["decoder.0.conv.depthwise.weight"])
    put("up.conv.1.weight", reconet["decoder.0.conv.pointwise.weight"])
    put("up.norm.gamma", reconet["decoder.0.conv.norm.weight"])
    put("up.norm.beta", reconet["decoder.0.conv.norm.bias"])
    put("head.conv.weight", reconet["decoder.1.conv.weight"])
    put("head.conv.bias", reconet["decoder.1.conv.bias"])
    net.load_state_dict(target)
