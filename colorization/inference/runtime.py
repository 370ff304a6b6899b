"""Where and how a colorizer runs: the device, numeric precision, memory layout and compilation.

`colorize_full` takes a `precision`; `prepare_for_inference` puts a loaded model in the layout
asked for. Every entry point that colorizes (``evaluate.py``, the colorize command) resolves its
``precision`` setting with `resolve_precision`, so ``auto`` means the same everywhere:

- ``fp32``: float32 throughout (the reference);
- ``bf16``: the networks run under bfloat16 autocast (convolutions and matrix products in bf16,
  reductions and the output in float32); the default on CUDA, opt-in on the CPU where it pays
  only with bf16 matrix units (AVX512-BF16 / AMX). BENCHMARKS.md gives its speed and its ΔE*ab
  against fp32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from colorization.errors import ConfigError, check_choice
from colorization.inference import AUTO, PRECISIONS
from colorization.networks.base import Network


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else must exist on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} needs a CUDA GPU, but none is available; use device=cpu or device=auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a device; expected auto, cpu, cuda or cuda:<index>") from None


def default_precision(device: torch.device) -> str:
    """``bf16`` on CUDA, ``fp32`` elsewhere."""
    return "bf16" if device.type == "cuda" else "fp32"


def resolve_precision(precision: str | None, device: torch.device, key: str = "precision") -> str:
    """``auto``/None -> `default_precision(device)`; otherwise one of `PRECISIONS` (a `ConfigError` naming `key`)."""
    if precision in (None, AUTO):
        return default_precision(device)
    check_choice(key, precision, (*PRECISIONS, AUTO))
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{key}=bf16: this GPU has no bfloat16 support; use {key}=fp32")
    return str(precision)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context of `precision` on `device` (a no-op for fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def prepare_for_inference(model: nn.Module, channels_last: bool = False, compile: bool = False) -> nn.Module:
    """`model` in eval mode, its weights in channels-last layout and/or its networks compiled (in place).

    Channels-last lets oneDNN (CPU) and cuDNN (GPU) pick their NHWC convolution kernels without
    reordering every activation; compilation fuses the element-wise tails of the layers. Both leave
    the state dict unchanged.
    """
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        compile_networks(model)
    return model


def compile_networks(model: nn.Module) -> None:
    """`torch.compile` the outermost `Network`s inside `model` (in place: parameter names stay as they are)."""
    for child in model.children():
        if isinstance(child, Network):
            child.compile()
        else:
            compile_networks(child)
