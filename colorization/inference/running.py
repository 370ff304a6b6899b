"""A colorizer run over many images: the working size each is shrunk to (`Plan`) and batches on a device (`Runner`).

The apps (``colorize``, the web page) and the evaluation of films run colorizers this way, so a film
scored by ``evaluate.py data=video`` is colorized exactly as ``colorize`` colorizes it.
`colorization.colorize.model` offers both to the apps beside loading a model by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from colorization.color.hints import Hints
from colorization.errors import ConfigError
from colorization.inference.base import Colorizer, shrink_l, working_size
from colorization.inference.onnx import OnnxColorizer
from colorization.inference.runtime import autocast, resolve_precision, weights_for


@dataclass(frozen=True)
class Plan:
    """How a photo is prepared for a model (picklable, so DataLoader workers can do it)."""

    native_size: int | None
    size_multiple: int
    resize_mode: str
    size: int | None = None
    min_size: int = 1

    @classmethod
    def of(cls, model: Colorizer, size: int | None = None) -> Plan:
        """`size` (``--size``) or, for a model without a fixed working size, the size it was trained at."""
        smallest = max(model.size_multiple, model.min_size)
        if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and size >= smallest):
            raise ConfigError(
                f"--size={size!r}: expected an integer >= {smallest} (the smallest side {model.display_name} takes)"
            )
        if size is None and model.native_size is None:
            size = getattr(model, "trained_size", None)
        return cls(model.native_size, model.size_multiple, model.resize_mode, size, model.min_size)

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) a photo of (height, width) pixels is colorized at."""
        return working_size(height, width, self.native_size, self.size_multiple, self.size, self.min_size)

    def shrink(self, l: Tensor) -> Tensor:
        """(1, H, W) full-resolution L -> (1, h, w) L at the working size."""
        return shrink_l(l[None], self.working_size(*l.shape[-2:]), self.resize_mode)[0]


class Runner:
    """Runs the network on batches of shrunk L on the device, under the chosen precision."""

    def __init__(self, model: Colorizer, device: torch.device, precision: str = "auto") -> None:
        self.model, self.device = model, device
        # an exported graph runs in the precision it was exported in
        exported = isinstance(model, OnnxColorizer)
        self.precision = "fp32" if exported else resolve_precision(precision, device, key="--precision")
        model.to(device).eval()

    @torch.inference_mode()
    def __call__(self, small: Tensor, hints: Hints | None = None) -> Tensor:
        """(B, 1, h, w) L -> (B, 2, h, w) float32 ab on the device."""
        model = weights_for(self.model, self.precision)  # bf16: the weights cast once, not on every call
        with autocast(self.device, self.precision):
            lab = model.colorize(small.to(self.device), hints=hints) if hints else model.colorize(small.to(self.device))
        return lab[:, 1:].float()
