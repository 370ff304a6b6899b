"""What every colorizer is at inference: a network and what its family does around it, in plain PyTorch.

A `Colorizer` turns L into Lab: `colorize` at the network's working size, `colorize_full` for a
photo of any size (L shrunk to the working size, colorized there, ab upsampled bilinearly onto the
full-resolution L, as Zhang et al.'s release does). No Lightning: `colorize`, the web page and
export load and run colorizers without the training stack; each family's LightningModule
(`colorization.modules`) trains the same networks and runs the same colorizer to validate.

A colorizer is rebuilt from a config (`_target_` + settings, stored in checkpoints as
``colorization.colorizer``) and the state dicts of its networks, its children.
"""

from __future__ import annotations

import inspect
import math
import warnings
from abc import abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color.spaces import ColorSpace, get_colorspace
from colorization.errors import ConfigError, DataError
from colorization.inference.runtime import autocast, weights_for

L_RANGE_TOLERANCE = 1e-3
"""How far L may stray outside [0, 100] (rounding in colour conversions) before it is refused."""


class Colorizer(nn.Module):
    """Base class: subclasses hold their networks as children and implement `colorize`.

    A network that needs a particular input size says so with `native_size` (a fixed working
    resolution, e.g. 256 for Zhang et al.) or `size_multiple` (e.g. 2**depth for a U-Net);
    `colorize_full` uses them to colorize photos of any size. `trained_size`, the side of the
    crops the model was trained on, is the working size of a model without a `native_size` when
    the colorize command is not told otherwise.
    """

    native_size: int | None = None
    size_multiple: int = 1
    min_size: int = 1
    """The smallest side the network takes: smaller photos are colorized at (at least) this size."""
    resize_mode: str = "bilinear"
    """How `colorize_full` shrinks L to the working size (an `F.interpolate` mode, antialiased)."""

    def __init__(self, colorspace: str = "lab") -> None:
        super().__init__()
        self.colorspace: ColorSpace = get_colorspace(colorspace)
        self.trained_size: int | None = None
        # the name of the config the model was trained from (``model=pix2pix``: "pix2pix"), for tables
        self.config_name: str | None = None

    @abstractmethod
    def colorize(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, 3, H, W) Lab prediction carrying the input L."""

    @property
    def display_name(self) -> str:
        """A short name for tables and UIs: the config's name (``pix2pix``, ``eccv16``), with the colour
        space when it is not Lab (``model2 (hls)``); `family_name` for a model without a config name."""
        name = self.config_name or self.family_name
        return name if self.colorspace.name == "lab" else f"{name} ({self.colorspace.name})"

    @property
    def family_name(self) -> str:
        """The model's name when it has no config name: its network's class (or its own)."""
        net = getattr(self, "net", None)
        return type(net if isinstance(net, nn.Module) else self).__name__

    def working_size(self, height: int, width: int, size: int | None = None) -> tuple[int, int]:
        """The (height, width) the network is run at for an input of (height, width); see `working_size`."""
        return working_size(height, width, self.native_size, self.size_multiple, size, self.min_size)

    def colorize_full(self, l: Tensor, size: int | None = None, precision: str = "fp32", **colorize_kwargs) -> Tensor:
        """Colorize photos of any size: (B, 1, H, W) L -> (B, 3, H, W) float32 Lab with the original L.

        L is resized to `working_size` (`size` overrides it), colorized there, and the predicted
        ab is upsampled bilinearly and re-attached to the full-resolution L. Runs under
        `torch.inference_mode`; `precision` ``bf16`` runs the network under bfloat16 autocast, its
        weights cast once (`colorization.inference.runtime.weights_for`). The result is an inference
        tensor: read it, do not hand it to autograd. Bad input (shape, dtype, value range, keywords
        this model does not read) raises a one-line `DataError` or `ConfigError` (`check_colorize_input`).
        """
        check_colorize_input(self, l, colorize_kwargs)
        model = weights_for(self, precision)
        with torch.inference_mode(), autocast(l.device, precision):
            work = self.working_size(*l.shape[-2:], size)
            if work == tuple(l.shape[-2:]):
                return model.colorize(l, **colorize_kwargs).float()
            ab = model.colorize(shrink_l(l, work, self.resize_mode), **colorize_kwargs)[:, 1:].float()
            return attach_ab(l.float(), ab)


def takes_hints(model: Any) -> bool:
    """Whether `model.colorize` reads colour hints (SIGGRAPH17)."""
    return "hints" in inspect.signature(model.colorize).parameters


def check_colorize_input(model: Any, l: Tensor, colorize_kwargs: dict[str, Any]) -> None:
    """Refuse what `colorize_full` cannot colorize correctly, in one line saying what was expected.

    `l` must be a floating-point (B, 1, H, W) tensor of CIE L* in [0, 100]; uint8 input (0..255)
    is refused with the conversion that fixes it. L whose largest value is above 0 and at most 1
    looks like [0, 1] input, but so does a nearly black photo (a night-sky crop of L 0..0.8), so it
    gets a warning with the fix rather than an error. `colorize_kwargs` must be keywords the
    model's `colorize` reads (only SIGGRAPH17 reads ``hints``).
    """
    accepted = inspect.signature(model.colorize).parameters
    unknown = [key for key in colorize_kwargs if key not in accepted]
    if unknown:
        readers = " (only SIGGRAPH17 reads hints)" if "hints" in unknown else ""
        raise ConfigError(
            f"{model.display_name} takes no {', '.join(f'{key}=' for key in unknown)} keyword{readers}; "
            f"it reads {[key for key in accepted if key != 'l'] or 'none'}"
        )
    if not isinstance(l, Tensor):
        raise DataError(f"expected L as a torch.Tensor of shape (B, 1, H, W); got {type(l).__name__}")
    if l.dim() != 4 or l.shape[1] != 1:
        fix = "; add the batch dimension with l[None]" if l.dim() == 3 and l.shape[0] == 1 else ""
        raise DataError(f"expected L of shape (B, 1, H, W); got {tuple(l.shape)}{fix}")
    if not l.is_floating_point():
        fix = " (uint8 0..255: use l.float() * 100 / 255)" if l.dtype == torch.uint8 else ""
        raise DataError(f"expected L as floating point in [0, 100]; got {l.dtype}{fix}")
    if l.numel() == 0:
        raise DataError(f"expected at least one pixel; got L of shape {tuple(l.shape)}")
    low, high = (float(v) for v in torch.aminmax(l.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DataError("L holds NaN or infinite values; expected L in [0, 100]")
    if low < -L_RANGE_TOLERANCE or high > 100 + L_RANGE_TOLERANCE:
        raise DataError(f"expected L in [0, 100]; got values in [{low:.4g}, {high:.4g}]")
    if 0 < high <= 1:
        warnings.warn(
            f"L holds values in [{low:.4g}, {high:.4g}]: a nearly black photo, or L in [0, 1] given for [0, 100] "
            "(then use l * 100)",
            stacklevel=3,
        )


def working_size(
    height: int,
    width: int,
    native_size: int | None,
    size_multiple: int,
    size: int | None = None,
    min_size: int = 1,
) -> tuple[int, int]:
    """The (height, width) a network runs at for a photo of (height, width).

    A network with a `native_size` runs at that square (`size` replaces it); any other runs at
    the photo's own size, or scaled so that its longer side is `size` (never enlarged), each
    side rounded to a multiple of `size_multiple` and at least `min_size` (a photo smaller than
    the network takes is colorized at the smallest size it does take).
    """
    if native_size is not None:
        side = size or native_size
        return side, side
    m = size_multiple
    if size and size < max(height, width):
        scale = size / max(height, width)
        height, width = round(height * scale), round(width * scale)
    smallest = -(-max(m, min_size) // m) * m  # the first multiple of m that is >= min_size
    # integer arithmetic (halves round up), so that exported graphs keep H and W symbolic
    return max(smallest, (height + m // 2) // m * m), max(smallest, (width + m // 2) // m * m)


def shrink_l(l: Tensor, size: tuple[int, int], mode: str, always: bool = False) -> Tensor:
    """(B, 1, H, W) L -> (B, 1, *size) L in [0, 100], resized with antialiasing (`mode`: an interpolate mode).

    `always` resizes even to the same size (an identity), for exported graphs whose sizes are symbolic.
    """
    if not always and tuple(l.shape[-2:]) == tuple(size):
        return l
    return F.interpolate(l, size=size, mode=mode, align_corners=False, antialias=True).clamp(0.0, 100.0)


def attach_ab(l: Tensor, ab: Tensor, always: bool = False) -> Tensor:
    """Full-resolution (B, 1, H, W) L and (B, 2, h, w) ab -> (B, 3, H, W) Lab, ab upsampled bilinearly.

    `always`: as for `shrink_l`.
    """
    if always or tuple(ab.shape[-2:]) != tuple(l.shape[-2:]):
        ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([l, ab], dim=1)
