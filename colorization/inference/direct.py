"""`DirectColorizer`: a network that predicts the colour space's target directly (the study's CNNs, U-Nets,
the GAN generators), decoded to Lab with the input L."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from colorization.color.spaces import normalize_l
from colorization.inference.base import Colorizer
from colorization.instantiate import target_of


class DirectColorizer(Colorizer):
    """``colorspace.decode_lab(L, net(normalize_l(L)))``.

    `net` builds the network (a partial carrying its own settings, e.g. ``model.net.filters``);
    it is called with ``out_channels``/``out_range`` from the colour space.
    """

    def __init__(self, net: Callable[..., nn.Module], colorspace: str = "lab") -> None:
        super().__init__(colorspace)
        self.net = net(out_channels=self.colorspace.channels, out_range=self.colorspace.output_range)
        self.size_multiple = self.net.working_multiple
        self.min_size = self.net.min_size

    def predict(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, channels, H, W) prediction in the colour space (what training fits)."""
        return self.net(normalize_l(l))

    def colorize(self, l: Tensor) -> Tensor:
        return self.colorspace.decode_lab(l, self.predict(l).float())


def direct_config(net: Mapping[str, Any], colorspace: str) -> dict[str, Any]:
    """The config of a `DirectColorizer` whose network is built by the partial config `net`."""
    return {"_target_": target_of(DirectColorizer), "net": dict(net), "colorspace": colorspace}
