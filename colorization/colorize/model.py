"""The colorizer as the colorize apps run it: loaded by name or file, a working size, batches on a device.

`load_model` takes what ``--model`` names; `Plan` says how a photo's L is shrunk for the model
(picklable, for decoding workers); `Runner` runs batches of shrunk L on the device in the chosen
precision; `temperature_set` changes the decoding temperature for a block. `Plan` and `Runner` are
defined in `colorization.inference.running`, below the jobs, because the evaluation of films runs
models with them too; the apps take them from here with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from colorization.errors import ConfigError
from colorization.inference.base import Colorizer
from colorization.inference.loading import load_colorizer
from colorization.inference.onnx import OnnxColorizer
from colorization.inference.running import Plan, Runner
from colorization.inference.runtime import resolve_device

__all__ = ["Plan", "Runner", "load_model", "resolve", "temperature_set"]


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


def resolve(device: str | torch.device) -> torch.device:
    """`device` as a torch device (``auto``, ``cpu``, ``cuda:1``; see `resolve_device`)."""
    return device if isinstance(device, torch.device) else resolve_device(device)
