"""DDColor's discriminator: DeOldify's "DynamicUNet" critic, a plain stack of spectral-norm convs.

    conv 4x4/2 (3 -> nf), then 3 x [conv 3x3 (c -> c), conv 4x4/2 (c -> 2c)], self-attention after
    the first downsampling of that loop, conv 3x3, conv 4x4 without padding to one channel

Every conv is spectrally normalised and followed by a ReLU (the last by nothing); there is no
BatchNorm. It judges sRGB images, real or colorized, without the L condition (as DDColor does),
and returns one logit per patch: (B, n) with n = (H/16 - 3) (W/16 - 3), 169 at 256 px, 1 at 64 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.networks.base import Network
from colorization.networks.ddcolor import spectral_conv, spectral_norm

ATTENTION_REDUCTION = 8
"""Query/key channels of the self-attention layer: channels // 8 (SAGAN)."""
LAST_KERNEL = 4


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019) over the pixels of a (B, C, H, W) map.

    o = gamma * V softmax_i(Q^T K) + x, with 1x1 spectral-norm projections Q, K (C/8 channels) and
    V (C); gamma starts at 0, so the layer starts as the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = _spectral_conv1d(channels, channels // ATTENTION_REDUCTION)
        self.key = _spectral_conv1d(channels, channels // ATTENTION_REDUCTION)
        self.value = _spectral_conv1d(channels, channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(2)  # (B, C, N)
        f, g, h = self.query(flat), self.key(flat), self.value(flat)
        beta = F.softmax(torch.bmm(f.transpose(1, 2), g), dim=1)  # (B, N, N), normalised over the attended pixel
        return (self.gamma * torch.bmm(h, beta) + flat).view_as(x)


def _spectral_conv1d(in_channels: int, out_channels: int) -> nn.Module:
    conv = nn.Conv1d(in_channels, out_channels, kernel_size=1, bias=False)
    nn.init.kaiming_normal_(conv.weight)
    return spectral_norm(conv)


class UNetDiscriminator(Network):
    """Patch discriminator of DDColor's recipe: `nf` 64 channels first, doubled `n_blocks` times.

    `min_size`: the smallest side it takes (64 px for 3 blocks: the last 4x4 conv needs a 4x4 map
    after the `n_blocks` + 1 halvings).
    """

    size_setting = "n_blocks"

    def __init__(self, in_channels: int = 3, nf: int = 64, n_blocks: int = 3) -> None:
        super().__init__()
        self.n_blocks = n_blocks
        layers: list[nn.Module] = [spectral_conv(in_channels, nf, kernel_size=4, stride=2)]
        for i in range(n_blocks):
            layers.append(spectral_conv(nf, nf))
            down = spectral_conv(nf, 2 * nf, kernel_size=4, stride=2)
            layers.append(nn.Sequential(*down, SelfAttention(2 * nf)) if i == 0 else down)
            nf *= 2
        layers += [
            spectral_conv(nf, nf),
            spectral_conv(nf, 1, kernel_size=LAST_KERNEL, padding=0, bias=False, relu=False),
        ]
        self.layers = nn.Sequential(*layers)
        self.min_size = 2 ** (n_blocks + 1) * LAST_KERNEL

    def forward(self, rgb: Tensor) -> Tensor:
        """(B, 3, H, W) sRGB in [0, 1] -> (B, n) real/fake logits, one per patch."""
        self.check_input(rgb)
        return self.layers(rgb).flatten(1)
