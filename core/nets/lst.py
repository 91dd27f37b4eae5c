"""Li, Liu, Kautz & Yang, "Learning Linear Transformations for Fast Image and Video Style Transfer", CVPR 2019: the
transformation module at relu3_1 (the authors' r31 model) or relu4_1 (their artistic r41 model, 512 channels).
Deviations from their code: each branch takes the covariance
of its centred output (the paper's description; the code's product is uncentred) and compress/unzip have no bias, so
the output's channel means are exactly the style's (the paper's phi_cs = T phi_c_centred + mean_s).
``covariance="uncentred", bias=True`` is the authors' MulLayer exactly (libs/Matrix.py of their release): what their
r31.pth / r41.pth hold (core/foreign/lst_release.py converts them)."""
from __future__ import annotations

import torch
from torch import nn

PAPER_MATRIX = 32      # the r31 model's matrix size
R31_CHANNELS = 256     # relu3_1 of the normalised VGG19


COVARIANCES = ("centred", "uncentred")


class CovarianceBranch(nn.Module):
    """Centred features (B, C, H, W) -> (B, m, m): a small CNN, the covariance of its output, then an FC layer.
    ``centred=False``: the authors' code, the product of the CNN's output with itself without removing its mean."""

    def __init__(self, channels: int = R31_CHANNELS, matrix: int = PAPER_MATRIX, centred: bool = True):
        super().__init__()
        self.centred = centred
        # The authors' widths: 256 -> 128 -> 64 -> m at relu3_1, 512 -> 256 -> 128 -> m at relu4_1.
        self.convs = nn.Sequential(
            nn.Conv2d(channels, channels // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels // 2, channels // 4, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels // 4, matrix, 3, padding=1))   # no ReLU: the covariance needs signed responses
        self.fc = nn.Linear(matrix * matrix, matrix * matrix)

    def forward(self, centred: torch.Tensor) -> torch.Tensor:
        y = self.convs(centred).flatten(2)
        if self.centred:
            y = y - y.mean(2, keepdim=True)
        cov = y @ y.transpose(1, 2) / y.shape[2]
        m = cov.shape[1]
        return self.fc(cov.flatten(1)).view(-1, m, m)


class LinearTransform(nn.Module):
    """relu3_1 content features and a style -> target features T (compress(content - mean_c)) -> unzip, + mean_s.

    T = S C: S comes from the style alone (``style_matrix``, computed once per style and reused for every frame),
    C from each content image. A style batch of one serves every content image; otherwise image i takes style i.
    """

    def __init__(self, channels: int = R31_CHANNELS, matrix: int = PAPER_MATRIX, feature_scale: float = 1.0,
                 covariance: str = "centred", bias: bool = False):
        super().__init__()
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        # The branches see features / feature_scale: VGG16's relu4_1 runs to hundreds (the normalised VGG19 the
        # paper used runs near 1), and their covariances would blow the FC layer's output up to ~1e10.
        self.channels, self.matrix, self.feature_scale = channels, matrix, float(feature_scale)
        # The authors' release: covariance="uncentred", bias=True (see the module's docstring).
        self.covariance, self.bias = covariance, bool(bias)
        self.content_branch = CovarianceBranch(channels, matrix, covariance == "centred")
        self.style_branch = CovarianceBranch(channels, matrix, covariance == "centred")
        self.compress = nn.Conv2d(channels, matrix, 1, bias=self.bias)
        self.unzip = nn.Conv2d(matrix, channels, 1, bias=self.bias)

    def config(self) -> dict:
        """The architecture for the file's metadata; settings at their defaults are left out, so files written
        before they existed read back the same."""
        config = {"arch": "lst_transform", "channels": self.channels, "matrix": self.matrix}
        if self.feature_scale != 1.0:
            config["feature_scale"] = self.feature_scale
        if self.covariance != "centred":
            config["covariance"] = self.covariance
        if self.bias:
            config["bias"] = True
        return config

    @torch.no_grad()
    def start_near_identity(self, basis: torch.Tensor | None = None) -> LinearTransform:
        """Both matrices start near I, compress projects on ``basis`` ((C, m) orthonormal columns, e.g. the content
        features' principal directions; default random) and unzip maps back, so training starts from the content's
        projection plus the style mean. With PyTorch's default init T is ~1e-3 of that and the output is the style
        mean alone, which the paper's 100k+ steps recover from but a CPU run does not."""
        for branch in (self.content_branch, self.style_branch):
            branch.fc.bias.copy_(torch.eye(self.matrix).flatten())
        if basis is None:
            basis = nn.init.orthogonal_(torch.empty(self.channels, self.matrix))
        self.compress.weight.copy_(basis.t().reshape_as(self.compress.weight))
        self.unzip.weight.copy_(basis.reshape_as(self.unzip.weight))
        for conv in (self.compress, self.unzip):
            if conv.bias is not None:
                conv.bias.zero_()
        return self

    def style_matrix(self, style_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(S (B, m, m), channel mean (B, C, 1, 1)) of each style image's features: the reusable style code."""
        mean = style_feats.mean((2, 3), keepdim=True)
        return self.style_branch((style_feats - mean) / self.feature_scale), mean

    def transfer(self, content_feats: torch.Tensor, style_matrix: torch.Tensor,
                 style_mean: torch.Tensor) -> torch.Tensor:
        """Content features -> stylized features with a style code from ``style_matrix``."""
        centred = content_feats - content_feats.mean((2, 3), keepdim=True)
        t = style_matrix @ self.content_branch(centred / self.feature_scale)          # (B, m, m), broadcast over a single style
        z = self.compress(centred)
        b, m, h, w = z.shape
        return self.unzip((t @ z.flatten(2)).view(b, m, h, w)) + style_mean

    def forward(self, content_feats: torch.Tensor, style_feats: torch.Tensor) -> torch.Tensor:
        return self.transfer(content_feats, *self.style_matrix(style_feats))
