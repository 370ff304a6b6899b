"""The colorizer as the colorize apps run it: loaded by name or file, a working size, batches on a device.

`load_model` takes what ``--model`` names; `Plan` says how a photo's L is shrunk for the model
(picklable, for decoding workers); `Runner` runs batches of shrunk L on the device in the chosen
precision; `temperature_set` changes the decoding temperature for a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from colorization.color.hints import Hints
from colorization.errors import ConfigError
from colorization.inference.base import Colorizer, shrink_l, working_size
from colorization.inference.loading import load_colorizer
from colorization.inference.onnx import OnnxColorizer
from colorization.inference.runtime import autocast, resolve_device, resolve_precision


def load_model(source: str | Path, offline: bool = False) -> Colorizer:
    """The colorizer `source` names: an ``.onnx`` export, a release name (``eccv16``) or a checkpoint/weight file."""
    if str(source).lower().endswith(".onnx"):
        return OnnxColorizer(source)
    return load_colorizer(source, offline=offline)


@contextmanager
def temperature_set(model: Colorizer, temperature: float | None) -> Iterator[None]:
    """Decode with `temperature` (annealed mean; 1 = the mean, towards 0 = the mode) for the block's duration.

    Models with a classification head take it (ECCV16; SIGGRAPH17 switches to its
    classification decoder); others raise `ConfigError`.
    """
    if temperature is None:
        yield
        return
    if not temperature > 0:
        raise ConfigError(f"--temperature={temperature}: expected a number > 0 (1 = mean, towards 0 = more saturated)")
    if not hasattr(model, "temperature"):
        raise ConfigError(
            f"--temperature: {type(model).__name__} does not decode a distribution over colours; it applies to "
            "ECCV16 and SIGGRAPH17"
        )
    saved = model.temperature, getattr(model, "decode", None)
    model.temperature = float(temperature)
    if saved[1] is not None:
        model.decode = "classification"
    try:
        yield
    finally:
        model.temperature = saved[0]
        if saved[1] is not None:
            model.decode = saved[1]


@dataclass(frozen=True)
class Plan:
    """How a photo is prepared for a model (picklable, so DataLoader workers can do it)."""

    native_size: int | None
    size_multiple: int
    resize_mode: str
    size: int | None = None

    @classmethod
    def of(cls, model: Colorizer, size: int | None = None) -> Plan:
        """`size` (``--size``) or, for a model without a fixed working size, the size it was trained at."""
        if size is not None and not (isinstance(size, int) and size >= model.size_multiple):
            raise ConfigError(f"--size={size!r}: expected an integer >= {model.size_multiple}")
        if size is None and model.native_size is None:
            size = getattr(model, "trained_size", None)
        return cls(model.native_size, model.size_multiple, model.resize_mode, size)

    def shrink(self, l: Tensor) -> Tensor:
        """(1, H, W) full-resolution L -> (1, h, w) L at the working size."""
        work = working_size(*l.shape[-2:], self.native_size, self.size_multiple, self.size)
        return shrink_l(l[None], work, self.resize_mode)[0]


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
        with autocast(self.device, self.precision):
            lab = (
                self.model.colorize(small.to(self.device), hints=hints)
                if hints
                else self.model.colorize(small.to(self.device))
            )
        return lab[:, 1:].float()


def resolve(device: str | torch.device) -> torch.device:
    """`device` as a torch device (``auto``, ``cpu``, ``cuda:1``; see `resolve_device`)."""
    return device if isinstance(device, torch.device) else resolve_device(device)
