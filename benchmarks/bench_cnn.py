"""Training throughput of the study's CNN variants (model1/2/3) and colour spaces, side by side.

Variants are timed in interleaved rounds and the median is reported, so that a background load
affects all of them alike; compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import statistics
import time

import torch

from colorization.colorspaces import get_colorspace, normalize_l
from colorization.models import StudyCNN

VARIANTS = {"model1 (s1, 12f)": {}, "model2 (s2, 12f)": {"stride": 2}, "model3 (s1, 32f)": {"filters": 32}}
SPACES = ("lab", "rgb", "hls")


class TrainStep:
    """One Adam step of a StudyCNN on a fixed random batch, target encoding included."""

    def __init__(self, space: str, batch: int, size: int, **net_kwargs) -> None:
        self.colorspace = get_colorspace(space)
        self.net = StudyCNN(self.colorspace.channels, self.colorspace.output_range, **net_kwargs)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.l = torch.rand(batch, 1, size, size) * 100
        self.ab = (torch.rand(batch, 2, size, size) - 0.5) * 60

    def __call__(self) -> None:
        target = self.colorspace.encode(self.l, self.ab)
        loss = torch.nn.functional.mse_loss(self.net(normalize_l(self.l)), target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def run(batch: int = 16, size: int = 224, steps: int = 3, rounds: int = 3) -> str:
    cases = {(name, space): TrainStep(space, batch, size, **kw) for name, kw in VARIANTS.items() for space in SPACES}
    for step in cases.values():  # warm-up: allocators, kernels
        step()
    speeds: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    for _ in range(rounds):
        for key, step in cases.items():
            start = time.perf_counter()
            for _ in range(steps):
                step()
            speeds[key].append(batch * steps / (time.perf_counter() - start))
    median = {key: statistics.median(values) for key, values in speeds.items()}
    base = median[("model1 (s1, 12f)", "lab")]
    rows = ["| variant | colour space | img/s (median) | vs model1/lab |", "|---|---|---|---|"]
    rows += [f"| {name} | {space} | {speed:.1f} | {speed / base:.2f}x |" for (name, space), speed in median.items()]
    header = (
        f"## CNN training step: batch {batch}, {size}x{size}, {torch.get_num_threads()} threads, "
        f"median of {rounds} interleaved rounds of {steps} steps\n\n"
    )
    return header + "\n".join(rows) + "\n"
