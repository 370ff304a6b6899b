"""Where and how a colorizer runs: the device, numeric precision, memory layout and compilation.

`colorize_full` takes a `precision`; `prepare_for_inference` puts a loaded model in the layout
asked for. Every entry point that colorizes (``evaluate.py``, the colorize command) resolves its
``precision`` setting with `resolve_precision`, so ``auto`` means the same everywhere:

- ``fp32``: float32 throughout (the reference);
- ``bf16``: the networks run under bfloat16 autocast (convolutions and matrix products in bf16,
  reductions and the output in float32); the default on CUDA, opt-in on the CPU where it pays
  only with bf16 matrix units (AVX512-BF16 / AMX: without them PyTorch falls back to reference
  kernels a hundred times slower than fp32). BENCHMARKS.md gives its speed and its ΔE*ab
  against fp32. Autocast would cast every convolution's weights to bf16 again on each call;
  `weights_for` keeps one copy of the model with them cast, made when the weights change.
"""

from __future__ import annotations

import copy
import logging
import weakref
from contextlib import AbstractContextManager
from typing import TypeVar

import torch
from torch import nn

from colorization.errors import ConfigError, check_choice
from colorization.inference import AUTO, PRECISIONS
from colorization.networks.base import Network

log = logging.getLogger(__name__)
M = TypeVar("M", bound=nn.Module)
BF16_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
"""Layers whose weight and bias autocast casts to bf16 on every call (the rest it leaves in float32)."""
_bf16_copies: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]] = weakref.WeakKeyDictionary()
"""model -> (what its weights were when copied, its bf16 copy); an entry goes with its model."""


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
    if precision == "bf16" and not has_fast_bf16(device):
        log.warning("%s=bf16: this CPU has no bfloat16 matrix units (AVX512-BF16, AMX); fp32 is much faster here", key)
    return str(precision)


def has_fast_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 matrix products on units made for them (a GPU with bf16, a CPU with
    AVX512-BF16 or AMX); elsewhere PyTorch's reference kernels are one to two orders slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context of `precision` on `device` (a no-op for fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def weights_for(model: M, precision: str) -> M:
    """The module to run under `autocast(device, precision)`: `model` itself for fp32; for bf16 a copy
    whose `BF16_LAYERS` hold bfloat16 weights, so autocast finds them cast already.

    The copy is made on first use and again only when a weight of `model` changed (in place, as an
    optimizer step or ``load_state_dict`` does, or by moving it), and it follows `model`'s train/eval
    modes; `model` (the float32 master that training and export use) is never touched. Its results
    equal autocast's on `model`, bit for bit: autocast rounds the same weights the same way.
    """
    if precision != "bf16":
        return model
    state = _weights_state(model)
    cached = _bf16_copies.get(model)
    if cached is None or cached[0] != state:
        cached = (state, bf16_copy(model))
        _bf16_copies[model] = cached
    for master, copied in zip(model.modules(), cached[1].modules(), strict=True):
        copied.training = master.training
    return cached[1]


def bf16_copy(model: M) -> M:
    """A copy of `model` with the weight and bias of its `BF16_LAYERS` in bfloat16 (memory layout kept)."""
    with torch.inference_mode(False):  # plain tensors, even when asked for inside inference mode
        copied = copy.deepcopy(model)
    for master, layer in zip(model.modules(), copied.modules(), strict=True):
        if getattr(master, "_compiled_call_impl", None) is not None:
            layer._compiled_call_impl = None  # the deep copy's compiled call would run the master
            layer.compile()
        if isinstance(layer, BF16_LAYERS):
            for name in ("weight", "bias"):
                tensor = getattr(layer, name)
                if tensor is not None:
                    tensor.data = tensor.data.to(torch.bfloat16)
    return copied


def _weights_state(model: nn.Module) -> tuple:
    """What changes when a weight or buffer of `model` is replaced, moved or modified in place."""
    tensors = [*model.parameters(), *model.buffers()]
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


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
