"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", 2022) as DDColor's image encoder.

Parameter names follow the official ConvNeXt release (``downsample_layers``, ``stages``, ``norm``),
so ImageNet-pretrained files load into it, plus DDColor's four extra channel-first layer norms
``norm0``..``norm3``: the encoder's outputs are the stage features passed through them, while the
un-normalised features feed the next stage (as in DDColor, whose hooks read those norms' outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LAYER_NORM_EPS = 1e-6
LAYER_SCALE_INIT = 1e-6
"""Initial value of the per-channel scale `gamma` on each block's residual branch."""
INIT_STD = 0.02
"""Standard deviation of conv and linear weights (ConvNeXt's truncated normal, cut at +-2 absolute)."""


@dataclass(frozen=True)
class ConvNeXtSize:
    """Blocks per stage and channels per stage."""

    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]


CONVNEXT_SIZES: dict[str, ConvNeXtSize] = {
    "tiny": ConvNeXtSize((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ConvNeXtSize((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ConvNeXtSize((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ConvNeXtSize((3, 3, 27, 3), (192, 384, 768, 1536)),
}


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of a (B, C, H, W) map, per pixel (ConvNeXt's channels-first norm)."""

    def __init__(self, channels: int, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """x + gamma * Linear(GELU(Linear(LayerNorm(DWConv7x7(x))))), the linears acting per pixel."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), LAYER_SCALE_INIT))
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, dim, H, W) -> (B, dim, H, W)."""
        y = self.dwconv(x).permute(0, 2, 3, 1)  # channels last for the per-pixel layers
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """Four stages at strides 4, 8, 16, 32; returns the four layer-normed stage outputs.

    `norm` (the classifier's final norm) is kept for the weight layout but has no part in the
    features: DDColor never uses the pooled output it normalises.
    """

    def __init__(self, size: str = "tiny", in_channels: int = 3) -> None:
        super().__init__()
        if size not in CONVNEXT_SIZES:
            raise ValueError(f"ConvNeXt size {size!r}: expected one of {sorted(CONVNEXT_SIZES)}")
        depths, dims = CONVNEXT_SIZES[size].depths, CONVNEXT_SIZES[size].dims
        self.dims = dims
        stem = nn.Sequential(nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0]))
        self.downsample_layers = nn.ModuleList(
            [stem]
            + [
                nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
                for i in range(3)
            ]
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth))) for depth, dim in zip(depths, dims, strict=True)
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", LayerNorm2d(dim))
        self.norm = nn.LayerNorm(dims[-1], eps=LAYER_NORM_EPS)
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, C, H, W) -> [(B, dims[i], H / 4 / 2**i, W / 4 / 2**i) for i in 0..3]."""
        features = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            features.append(getattr(self, f"norm{i}")(x))
        return features


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=INIT_STD)
        nn.init.zeros_(module.bias)
