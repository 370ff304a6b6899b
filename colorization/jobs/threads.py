"""How many CPU threads each process of a run computes with.

PyTorch starts one intra-op thread per logical CPU in every process. A training process and its
DataLoader workers then compete for the same cores, and on a machine shared with other jobs a
2-thread GAN step ran 10-20x slower than a 1-thread one (threads spinning while they wait for
each other). So:

- DataLoader workers compute with 1 thread each (PyTorch sets this in every worker it starts;
  their crops and flips are uint8 copies that gain nothing from more);
- each training process uses ``trainer.num_threads`` threads; null means its share of the
  physical cores (the cores this process may run on, divided among the node's training
  processes) minus its loader workers, at least 1, so that processes and workers together fill
  the cores once; an ``OMP_NUM_THREADS`` set in the environment wins over that default.
  ``evaluate.py`` does the same with its ``num_threads``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from colorization.errors import ConfigError

CPUINFO = Path("/proc/cpuinfo")


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads counted once; the affinity mask respected)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    logical = os.cpu_count() or allowed
    cores = set()
    try:
        physical = None
        for line in CPUINFO.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                physical = value.strip()
            elif key.strip() == "core id":
                cores.add((physical, value.strip()))
    except OSError:
        pass
    threads_per_core = max(1, logical // len(cores)) if cores else 1
    return max(1, allowed // threads_per_core)


def default_num_threads(num_workers: int, processes: int = 1) -> int:
    """Threads for one of `processes` processes with `num_workers` loader workers each, at least 1."""
    return max(1, physical_cores() // max(1, processes) - max(0, num_workers))


def set_num_threads(
    num_threads: int | None, num_workers: int = 0, processes: int = 1, key: str = "trainer.num_threads"
) -> int:
    """Set torch's intra-op threads of this process; returns the number set.

    None: ``$OMP_NUM_THREADS`` when the environment sets it (the user decided), else `default_num_threads`.
    """
    if num_threads is None:
        from_env = os.environ.get("OMP_NUM_THREADS", "")
        num_threads = int(from_env) if from_env.isdigit() and int(from_env) > 0 else None
    if num_threads is None:
        num_threads = default_num_threads(num_workers, processes)
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ConfigError(f"{key}={num_threads!r}: expected a positive number of threads or null (automatic)")
    torch.set_num_threads(num_threads)
    return num_threads
