"""Training throughput of the study's CNN variants (model1/2/3) and colour spaces, side by side.

One Adam step of each variant on a fixed random batch, the target encoding included, timed in
interleaved rounds (`benchmarks.timing.interleave`); ratios to model1/lab are paired per round.
"""

from __future__ import annotations

import torch

from benchmarks.timing import interleave, rate, table
from colorization.color.spaces import get_colorspace, normalize_l
from colorization.networks import StudyCNN

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


def run(batch: int = 8, size: int = 96, steps: int = 1) -> str:
    cases = {
        f"{name} / {space}": TrainStep(space, batch, size, **kwargs)
        for name, kwargs in VARIANTS.items()
        for space in SPACES
    }
    calls = {key: rate(lambda step=step: [step() for _ in range(steps)], batch * steps) for key, step in cases.items()}
    # short calls, many rounds: neighbours in a round see the same background load
    measured = interleave(calls, "cnn", budget_s=45, max_rounds=15)
    rows = [[key, measured.rates[key].cell("{:.1f}"), measured.ratios[key].cell(suffix="x")] for key in measured.names]
    return (
        f"## CNN training step: the study's variants and colour spaces, batch {batch}, {size}x{size}\n\n"
        f"Median (min-max) over {len(measured.rates[measured.names[0]].values)} interleaved rounds of {steps} steps; "
        "ratios paired per round.\n\n" + table(["variant / colour space", "img/s", "vs model1 / lab"], rows)
    )
