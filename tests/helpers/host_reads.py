"""Counting the tensor values a piece of code reads on the host, on a CPU: where a GPU run would wait.

A GPU runs asynchronously: the CPU queues a step's kernels and moves on, unless Python asks for a
value (``loss.item()``, ``float(t)``, ``if t:``), which waits for the GPU to finish first. Those
waits are where a training loop falls behind a plain one, and they can be found on a CPU:
`HostReads` lists them (tests/test_host_reads.py keeps train.py's steps free of them).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

HOST_READS = ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__")
"""Tensor methods that hand a value to Python: on a GPU each waits for the work queued before it."""


@dataclass
class HostReads(TorchFunctionMode):
    """Records every tensor value read on the host (`HOST_READS`) while active: ``with HostReads() as reads``,
    with `mark` labels in between to tell the steps apart."""

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
