"""The residual U-Net generator of the study's CWGAN, without its gradient-cutting bug."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.errors import check_choice, check_int
from colorization.networks.base import Network
from colorization.networks.layers import NORMS, norm_layer, output_activation

MAX_DOWNS = 6
MAX_WIDTH = 1024


class ResBlock(nn.Module):
    """conv 3x3 - norm - ReLU - conv 3x3 - norm - ReLU, plus a 1x1 convolution shortcut.

    The study's block detached its input, so nothing before it got a gradient through the main
    path; here both paths carry the gradient.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str) -> None:
        super().__init__()
        bias = norm == "none"
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            norm_layer(norm, out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
            norm_layer(norm, out_channels),
            nn.ReLU(),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.shortcut(x)


class ResUNetGenerator(Network):
    """Residual U-Net: ResBlocks, 2x2 max-pool down, bilinear upsampling + concatenated skips up.

    Widths ``ngf * 2**i`` for levels 0 .. num_downs (the last is the bottleneck); a 1x1 output
    convolution and an activation onto `out_range`. The study's configuration is
    ``num_downs=3, ngf=64`` (224 -> 28 at the bottleneck, 8.22 M parameters). Upsampling goes to
    each skip's exact size, so any input of at least ``2**num_downs`` pixels works.

    (B, in_channels, H, W) normalised L -> (B, out_channels, H, W) in `out_range`.
    """

    size_setting = "num_downs"

    def __init__(
        self,
        out_channels: int,
        out_range: tuple[float, float],
        num_downs: int = 3,
        ngf: int = 64,
        norm: str = "batch",
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_int("model.generator.num_downs", num_downs, 1, MAX_DOWNS)
        check_int("model.generator.ngf", ngf, 1, MAX_WIDTH)
        check_choice("model.generator.norm", norm, NORMS)
        self.num_downs = num_downs
        self.min_size = 2**num_downs
        widths = [ngf * 2**i for i in range(num_downs + 1)]
        self.encoder = nn.ModuleList(
            [ResBlock(in_channels, widths[0], norm)]
            + [ResBlock(widths[i - 1], widths[i], norm) for i in range(1, num_downs + 1)]
        )
        self.decoder = nn.ModuleList([ResBlock(widths[i + 1] + widths[i], widths[i], norm) for i in range(num_downs)])
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.out = output_activation(out_range)

    def forward(self, l_norm: Tensor) -> Tensor:
        self.check_input(l_norm)
        skips = []
        x = l_norm
        for level, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if level else x)
            skips.append(x)
        for level in range(self.num_downs - 1, -1, -1):
            skip = skips[level]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.decoder[level](torch.cat([skip, x], dim=1))
        return self.out(self.head(x))
