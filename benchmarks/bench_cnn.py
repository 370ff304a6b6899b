"""Training throughput of the study's CNN variants (model1/2/3) and colour spaces, side by side."""

from __future__ import annotations

import time

import torch

from colorization.colorspaces import get_colorspace, normalize_l
from colorization.models import StudyCNN

VARIANTS = {"model1 (s1, 12f)": {}, "model2 (s2, 12f)": {"stride": 2}, "model3 (s1, 32f)": {"filters": 32}}


def images_per_second(space: str, batch: int, size: int, steps: int, **net_kwargs) -> float:
    colorspace = get_colorspace(space)
    net = StudyCNN(colorspace.channels, colorspace.output_range, **net_kwargs)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    l = torch.rand(batch, 1, size, size) * 100
    ab = (torch.rand(batch, 2, size, size) - 0.5) * 60
    target = colorspace.encode(l, ab)
    for step in range(steps + 1):
        if step == 1:  # the first step warms up allocators and kernels
            start = time.perf_counter()
        loss = torch.nn.functional.mse_loss(net(normalize_l(l)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - start)


def run(batch: int = 16, size: int = 224, steps: int = 5) -> str:
    rows = ["| variant | colour space | img/s | vs model1/lab |", "|---|---|---|---|"]
    base = None
    for name, kwargs in VARIANTS.items():
        for space in ("lab", "rgb", "hls"):
            speed = images_per_second(space, batch, size, steps, **kwargs)
            base = base or speed
            rows.append(f"| {name} | {space} | {speed:.1f} | {speed / base:.2f}x |")
    header = f"## CNN training step, batch {batch}, {size}x{size}, {torch.get_num_threads()} threads\n"
    return header + "\n".join(rows) + "\n"
