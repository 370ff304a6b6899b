"""Small building blocks shared by the networks."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RangeActivation(nn.Module):
    """Squash logits into (low, high) with a scaled sigmoid, so every target value is reachable.

    For (-1, 1) this equals tanh(x / 2); for (0, 1) it is the plain sigmoid.
    """

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        if not high > low:
            raise ValueError(f"output range ({low}, {high}) is empty")
        self.low, self.high = float(low), float(high)

    def forward(self, x: Tensor) -> Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(x)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"


NORMS = ("batch", "instance", "layer", "none")


def norm_layer(name: str, channels: int) -> nn.Module:
    """The normalisation layer called `name` for `channels` feature maps.

    ``batch``: BatchNorm2d; ``instance``: InstanceNorm2d (affine); ``layer``: GroupNorm with one
    group, i.e. layer norm over (C, H, W) with a per-channel affine; ``none``: identity. Only
    ``batch`` mixes samples of a batch, which a WGAN-GP critic must not do.
    """
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"norm {name!r} is unknown; expected one of {NORMS}")


def output_activation(out_range: tuple[float, float]) -> nn.Module:
    """tanh for targets in (-1, 1) (pix2pix's output layer), else a `RangeActivation` onto `out_range`."""
    if tuple(float(v) for v in out_range) == (-1.0, 1.0):
        return nn.Tanh()
    return RangeActivation(*out_range)


def init_normal_(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix/DCGAN initialisation: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
