"""pix2pix's U-Net generator (Isola et al. 2017), with its depth as a parameter."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from colorization.errors import ConfigError, check_choice, check_int
from colorization.networks.base import Network
from colorization.networks.layers import NORMS, norm_layer, output_activation

KERNEL, STRIDE, PADDING = 4, 2, 1  # every down/up convolution halves/doubles the size exactly
MAX_WIDTH_MULTIPLE = 8  # widths grow ngf, 2 ngf, 4 ngf, then stay at 8 ngf
FIRST_DROPOUT_LEVEL = 4  # pix2pix: dropout in the 8-ngf up blocks between level 4 and the innermost
MAX_DOWNS = 10
MAX_WIDTH = 1024


class UNetGenerator(Network):
    """U-Net with skip concatenation: conv 4x4 s2 down (LeakyReLU 0.2), transposed conv 4x4 s2 up (ReLU).

    Level ``i`` (0 = outermost) has ``ngf * min(2**i, 8)`` channels; the innermost level reaches
    ``H / 2**num_downs``. As in pix2pix: no norm on the outermost down and the innermost down
    convolution, norm after every other convolution (convolutions before a norm have no bias, and
    neither does any convolution of the down path), dropout in the up blocks of levels 4 ..
    num_downs - 2 (three of them for ``num_downs=8``), and the output convolution keeps its bias.
    ``num_downs=8, ngf=64`` is pix2pix's ``unet_256`` (54,409,858 parameters for 1 -> 2 channels).

    (B, in_channels, H, W) normalised L -> (B, out_channels, H, W) in `out_range` (tanh for
    (-1, 1)); H and W must be multiples of ``2**num_downs`` (`size_multiple`).
    """

    size_setting = "num_downs"

    def __init__(
        self,
        out_channels: int,
        out_range: tuple[float, float],
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_int("model.generator.num_downs", num_downs, 2, MAX_DOWNS)
        check_int("model.generator.ngf", ngf, 1, MAX_WIDTH)
        check_choice("model.generator.norm", norm, NORMS)
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.generator.dropout={dropout!r} is out of range; expected [0, 1)")
        self.num_downs = num_downs
        self.size_multiple = self.min_size = 2**num_downs
        widths = [ngf * min(2**i, MAX_WIDTH_MULTIPLE) for i in range(num_downs)]
        bias = norm == "none"
        innermost = num_downs - 1

        downs = [nn.Conv2d(in_channels, widths[0], KERNEL, STRIDE, PADDING, bias=bias)]
        for i in range(1, num_downs):
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(widths[i - 1], widths[i], KERNEL, STRIDE, PADDING, bias=bias)]
            if i != innermost:
                layers.append(norm_layer(norm, widths[i]))
            downs.append(nn.Sequential(*layers))
        self.downs = nn.ModuleList(downs)

        ups = [nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * widths[0], out_channels, KERNEL, STRIDE, PADDING))]
        for i in range(1, num_downs):
            # the innermost level has no skip to concatenate; every other one doubles its input
            in_width = widths[i] if i == innermost else 2 * widths[i]
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(in_width, widths[i - 1], KERNEL, STRIDE, PADDING, bias=bias),
                norm_layer(norm, widths[i - 1]),
            ]
            if FIRST_DROPOUT_LEVEL <= i < innermost and dropout > 0:
                layers.append(nn.Dropout(dropout))
            ups.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList(ups)
        self.out = output_activation(out_range)

    def forward(self, l_norm: Tensor) -> Tensor:
        self.check_input(l_norm)
        skips = []
        x = l_norm
        for down in self.downs:
            x = down(x)
            skips.append(x)
        y = self.ups[-1](skips[-1])
        for i in range(self.num_downs - 2, -1, -1):
            y = self.ups[i](torch.cat([skips[i], y], dim=1))
        return self.out(y)
