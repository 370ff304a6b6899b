"""Hardware: fail early when a config asks for a device this machine lacks, and time GPU work honestly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

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
