"""Hardware: fail early when a config asks for a device this machine lacks, and time GPU work honestly."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig
from torch.overrides import TorchFunctionMode

from colorization.errors import ConfigError

GPU_ACCELERATORS = ("gpu", "cuda")


def check_hardware(trainer_cfg: DictConfig) -> None:
    """Fail early, in one line, when the trainer asks for hardware this machine lacks."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} needs a CUDA GPU, but none is available "
            "(torch.cuda.is_available() is False); use trainer=cpu or trainer=default"
        )
    devices = trainer_cfg.get("devices", "auto")
    if accelerator in GPU_ACCELERATORS and isinstance(devices, int) and devices > torch.cuda.device_count():
        raise ConfigError(f"trainer.devices={devices} but only {torch.cuda.device_count()} CUDA GPU(s) are visible")


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on a CUDA `device` (CUDA runs asynchronously); nothing on other devices."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now(device: torch.device) -> float:
    """`time.perf_counter()` after the work queued on `device` finished, so it counts where it belongs."""
    synchronize(device)
    return time.perf_counter()


@dataclass
class Timer:
    """Accumulated wall-clock seconds of the `timed` blocks run on one device."""

    seconds: float = 0.0

    @contextmanager
    def timed(self, device: torch.device) -> Iterator[None]:
        """Add the seconds the block takes, queued GPU work included, to `seconds`."""
        start = now(device)
        yield
        self.seconds += now(device) - start


HOST_READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")
"""Tensor methods that hand a value to Python: on a GPU each waits for the work queued before it."""


@dataclass
class HostReads(TorchFunctionMode):
    """Records every tensor value read on the host (`HOST_READS`) while active: ``with HostReads() as reads``.

    A GPU runs asynchronously: the CPU queues a step's kernels and moves on, unless Python asks for
    a value (``loss.item()``, ``float(t)``, ``if t:``), which waits for the GPU to finish first. Those
    waits are where a training loop falls behind a plain one, and they can be found on a CPU: this
    mode lists them, with `mark` labels in between to tell the steps apart.
    """

    events: list[str] = field(default_factory=list)

    CPU_RESIDENT = ("torch/optim/",)
    """Code whose reads are of CPU tensors on any machine, so they wait for nothing: torch.optim keeps
    its step counters on the CPU (unless built ``capturable``). Not recorded."""

    def __post_init__(self) -> None:
        super().__init__()

    def mark(self, label: str) -> None:
        self.events.append(f"@{label}")

    def between(self, first: str, last: str) -> list[str]:
        """The reads recorded after `mark(first)` and before `mark(last)`."""
        start, end = self.events.index(f"@{first}"), self.events.index(f"@{last}")
        return [event for event in self.events[start + 1 : end] if not event.startswith("@")]

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            caller = _caller(self.CPU_RESIDENT)
            if caller is not None:
                self.events.append(f"{name} at {caller}")
        return func(*args, **(kwargs or {}))


def _caller(skipped: tuple[str, ...]) -> str | None:
    """``file:line`` of the innermost frame outside torch itself (the code that asked for the value);
    None when a frame on the way is in one of the `skipped` paths."""
    frame = sys._getframe(2)
    torch_root = os.path.dirname(torch.__file__)
    while frame is not None and frame.f_code.co_filename.startswith(torch_root):
        if any(part in frame.f_code.co_filename.replace(os.sep, "/") for part in skipped):
            return None
        frame = frame.f_back
    if frame is None:
        return "?"
    parts = frame.f_code.co_filename.split(os.sep)
    return f"{os.sep.join(parts[-3:])}:{frame.f_lineno}"
