"""pix2pix's PatchGAN discriminator (`NLayerDiscriminator`), also used as the WGAN-GP critic."""

from __future__ import annotations

from torch import Tensor, nn

from colorization.errors import check_choice, check_int
from colorization.networks.base import Network
from colorization.networks.layers import NORMS, norm_layer

KERNEL, PADDING = 4, 1
MAX_WIDTH_MULTIPLE = 8
MAX_LAYERS = 6
MAX_WIDTH = 1024


class PatchDiscriminator(Network):
    """C(ndf) s2 -> C(2 ndf) s2 -> ... (n_layers strided) -> C s1 -> C1 s1, all 4x4, LeakyReLU 0.2.

    One logit (or critic value) per overlapping patch: with ``n_layers=3`` each output pixel sees
    a 70x70 input patch and a 256x256 input gives a 30x30 map. The first convolution has no norm;
    `norm` (``batch`` for vanilla/LSGAN, ``none``/``instance``/``layer`` for a WGAN-GP critic)
    follows every other one but the last, and convolutions before a norm have no bias. With
    ``n_layers=3, ndf=64``, 3 input channels and batch norm it has 2,765,633 parameters.

    (B, in_channels, H, W) -> (B, 1, H / 2**n_layers - 2, W / 2**n_layers - 2); H, W >= `min_size`.
    """

    size_setting = "n_layers"

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        check_int("model.discriminator.n_layers", n_layers, 1, MAX_LAYERS)
        check_int("model.discriminator.ndf", ndf, 1, MAX_WIDTH)
        check_choice("model.discriminator.norm", norm, NORMS)
        self.n_layers = n_layers
        bias = norm == "none"
        widths = [ndf * min(2**i, MAX_WIDTH_MULTIPLE) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], KERNEL, 2, PADDING), nn.LeakyReLU(0.2)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], KERNEL, stride, PADDING, bias=bias),
                norm_layer(norm, widths[i]),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, KERNEL, 1, PADDING))
        self.net = nn.Sequential(*layers)
        # n_layers strided convs floor-halve the size, the two stride-1 4x4 convs take 1 pixel each
        self.min_size = 3 * 2**n_layers

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.net(x)
