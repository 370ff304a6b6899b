"""Zhang et al.'s colorizers at inference, as the official release runs them.

Both work in Lab only and run a photo the release's way (`Colorizer.colorize_full`): L resized
with a bicubic filter to `native_size` (256 by default; None runs at the photo's size rounded to
the trunk's stride of 8), ab predicted there, upsampled bilinearly and re-attached to the
full-resolution L.

- `ECCV16Colorizer` decodes its bin distribution by the annealed mean at `temperature` (the
  release decodes the plain mean, T = 1; the paper recommends 0.38).
- `SIGGRAPH17Colorizer` reads user hints and decodes by its regression head (the release) or its
  class head (annealed mean at `temperature`); its class head's probabilities suggest colours.

`release_settings` recognises each official release file by its keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from colorization.color.ab_bins import ABQuantizer, grid_centres
from colorization.color.hints import Hints
from colorization.color.spaces import AB_SCALE
from colorization.errors import ConfigError, DataError, check_choice
from colorization.files.weights import load_strict
from colorization.inference.base import Colorizer
from colorization.networks.zhang import ECCV16_BINS, TRUNK_STRIDE, ECCV16Net, SIGGRAPH17Net

NATIVE_SIZE = 256
"""The release's working resolution."""
ANNEALED_T = 0.38
"""The paper's annealed-mean temperature: more saturated than the mean (T = 1), less noisy than the mode."""
DECODERS = ("regression", "classification")
ECCV16_SIGNATURE = "model8.6.weight"
SIGGRAPH17_SIGNATURE = "model_class.0.weight"
"""A key only that release file has (ECCV16's classifier, SIGGRAPH17's class head)."""


class ZhangColorizer(Colorizer):
    """What both share: Lab only, the release's bicubic resizing, a working size, a temperature."""

    resize_mode = "bicubic"  # the release resizes the photo with PIL's bicubic filter
    size_multiple = TRUNK_STRIDE

    def __init__(
        self, colorspace: str = "lab", native_size: int | None = NATIVE_SIZE, temperature: float = ANNEALED_T
    ) -> None:
        super().__init__(colorspace)
        if self.colorspace.name != "lab":
            raise ConfigError(f"colorspace.name={self.colorspace.name!r}: Zhang et al.'s models predict ab; use lab")
        if native_size is not None and not (isinstance(native_size, int) and native_size >= TRUNK_STRIDE):
            raise ConfigError(f"model.native_size={native_size!r}: expected an integer >= {TRUNK_STRIDE} or null")
        if not temperature > 0:
            raise ConfigError(f"model.temperature={temperature!r}: expected > 0 (1 = mean, towards 0 = mode)")
        self.native_size = native_size
        self.temperature = float(temperature)

    @property
    def family_name(self) -> str:
        # the family names the model better than its network (ECCV16Colorizer, not ECCV16Net)
        return type(self).__name__

    def load_network(self, state_dict: Mapping[str, Tensor], source: str | Path) -> None:
        """Load an official (or our own) network state dict strictly; `source` names it in errors."""
        load_strict(self.net, dict(state_dict), source)


class ECCV16Colorizer(ZhangColorizer):
    """ECCV16: L -> a distribution over `num_bins` ab bins per pixel -> its annealed mean."""

    release_name = "eccv16"

    def __init__(self, num_bins: int = ECCV16_BINS, **settings: Any) -> None:
        super().__init__(**settings)
        self.net = ECCV16Net(num_bins)

    @staticmethod
    def release_settings(state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """The settings that run an official ECCV16 file as the release does (T = 1), or None if it is not one."""
        if ECCV16_SIGNATURE not in state_dict or SIGGRAPH17_SIGNATURE in state_dict:
            return None
        return {"num_bins": int(state_dict[ECCV16_SIGNATURE].shape[0]), "temperature": 1.0}

    @property
    def bin_centres(self) -> Tensor:
        """(Q, 2) the ab bin centres the network decodes with (its fixed ``model_out`` weights x 110)."""
        return self.net.model_out.weight.detach()[:, :, 0, 0].T * AB_SCALE

    def colorize(self, l: Tensor) -> Tensor:
        return torch.cat([l, self.net(l, self.temperature)], dim=1)


class SIGGRAPH17Colorizer(ZhangColorizer):
    """SIGGRAPH17: L + hints -> class logits (529 ab bins, 1/4 resolution) and regressed ab.

    `decode` picks the head that colorizes: ``regression`` (the release) or ``classification``
    (annealed mean at `temperature`).
    """

    release_name = "siggraph17"

    def __init__(self, decode: str = "regression", **settings: Any) -> None:
        super().__init__(**settings)
        check_choice("model.decode", decode, DECODERS)
        self.decode = decode
        self.net = SIGGRAPH17Net()
        self.quantizer = ABQuantizer(grid_centres())

    @staticmethod
    def release_settings(state_dict: Mapping[str, Tensor]) -> dict[str, Any] | None:
        """The settings that run an official SIGGRAPH17 file as the release does, or None if it is not one."""
        if SIGGRAPH17_SIGNATURE not in state_dict or ECCV16_SIGNATURE in state_dict:
            return None
        return {}

    def colorize(self, l: Tensor, hints: Hints | None = None) -> Tensor:
        """(B, 1, H, W) L -> (B, 3, H, W) Lab; `hints` (points in any image size) guide the colours."""
        logits, ab = self.run_network(l, hints)
        if self.decode == "classification":
            ab = F.interpolate(self.quantizer.decode(logits, self.temperature), size=l.shape[-2:], mode="bilinear")
        return torch.cat([l, ab], dim=1)

    def colour_probabilities(self, l: Tensor, hints: Hints | None = None) -> Tensor:
        """(B, 1, H, W) L (+ hints) -> (B, Q, ceil(H/4), ceil(W/4)) the class head's probability of each ab bin.

        The bins' centres are ``self.quantizer.centres`` (Q, 2): the colours the model finds
        likely at a point, which an interactive tool offers as a palette.
        """
        return F.softmax(self.run_network(l, hints)[0], dim=1)

    def run_network(self, l: Tensor, hints: Hints | None) -> tuple[Tensor, Tensor]:
        """The network on L and the rasterized hints: class logits (1/4 resolution) and regressed ab."""
        hint_ab = mask = None
        if hints is not None:
            if len(hints.points) != l.shape[0]:
                raise DataError(f"hints for {len(hints.points)} images given with a batch of {l.shape[0]}")
            hint_ab, mask = hints.rasterize(*l.shape[-2:], device=l.device)
        return self.net(l, hint_ab, mask)
