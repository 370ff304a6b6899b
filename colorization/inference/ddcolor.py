"""DDColor at inference, as the authors run it, and how its release files are recognised and loaded.

The gray sRGB of L (a = b = 0) is the network's input, ImageNet normalisation happens inside the
network, and the predicted a*, b* (Lab units) are joined to the input L. `colorize_full` runs the
network at `input_size` x `input_size` (512, the authors' inference default; the models were
trained at 256), upsamples ab to the photo's size and keeps its full-resolution L. The authors
upsample ab with `F.interpolate`'s default, nearest; this project upsamples bilinearly (as for
every family), which avoids blocky colour edges on photos larger than `input_size` and changes
nothing else. They resize the RGB photo (OpenCV bilinear) and take its L; here L itself is
resized with antialiasing. Both differ from their output only near edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from colorization.color.spaces import gray_rgb
from colorization.errors import ConfigError, check_choice
from colorization.files.weights import load_strict
from colorization.inference.base import Colorizer
from colorization.networks.ddcolor import SIZES, STRIDE, DDColorNet

INFERENCE_SIZE = 512
"""The authors' inference resolution (their models were trained on 256-px crops)."""
NORMALISATION_BUFFERS = ("mean", "std")
"""The network's ImageNet statistics: constants, so a release file may leave them out."""
WIDTH_OF_SIZE = {"tiny": 96, "large": 192}
"""Channels of the ConvNeXt stem per size: how a state dict tells its size."""
STEM_KEY = "encoder.arch.downsample_layers.0.0.weight"
QUERY_KEY = "decoder.color_decoder.query_feat.weight"


def release_size(state_dict: Mapping[str, Any]) -> str | None:
    """'tiny' or 'large' if `state_dict` is a DDColor network's (release layout, maybe under "params"), else None."""
    if isinstance(state_dict.get("params"), Mapping):
        state_dict = state_dict["params"]
    if QUERY_KEY not in state_dict or STEM_KEY not in state_dict:
        return None
    width = state_dict[STEM_KEY].shape[0]
    return next((size for size, w in WIDTH_OF_SIZE.items() if w == width), None)


class DDColorColorizer(Colorizer):
    """DDColor-T (`size` 'tiny') or DDColor-L ('large'), run at `input_size` (a multiple of 32).

    `num_queries` colour queries and `num_layers` colour-decoder layers (the release: 100 and 9).
    """

    size_multiple = STRIDE
    release_name = "ddcolor"

    def __init__(
        self,
        colorspace: str = "lab",
        size: str = "tiny",
        input_size: int = INFERENCE_SIZE,
        num_queries: int = 100,
        num_layers: int = 9,
    ) -> None:
        super().__init__(colorspace)
        if self.colorspace.name != "lab":
            raise ConfigError(f"colorspace.name={self.colorspace.name!r}: DDColor predicts ab; use lab")
        check_choice("model.size", size, SIZES)
        if not (isinstance(input_size, int) and input_size >= STRIDE and input_size % STRIDE == 0):
            raise ConfigError(f"model.input_size={input_size!r}: expected a multiple of {STRIDE}")
        self.native_size = input_size
        self.num_queries, self.num_layers = num_queries, num_layers
        self.net = DDColorNet(size, num_queries, num_layers)

    @property
    def display_name(self) -> str:
        return f"DDColor-{self.net.size[0].upper()}"

    @staticmethod
    def release_settings(state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """The settings of a DDColor release file (its size), or None if it is not one."""
        size = release_size(state_dict)
        return None if size is None else {"size": size}

    def load_network(self, state_dict: Mapping[str, Tensor], source: str | Path) -> None:
        """Load a DDColor state dict (release layout) strictly into the network; `source` names it in errors."""
        found, size = release_size(state_dict), self.net.size
        if found is not None and found != size:
            raise ConfigError(f"{source}: a DDColor-{found} file, but model.size={size!r}; set model.size={found}")
        load_strict(self.net, dict(state_dict), source, optional=lambda key: key in NORMALISATION_BUFFERS)

    def predict(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100], sides multiples of 32 -> (B, 2, H, W) predicted ab in Lab units."""
        return self.net(gray_rgb(l))

    def colorize(self, l: Tensor) -> Tensor:
        return torch.cat([l, self.predict(l).float()], dim=1)
