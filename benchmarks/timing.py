"""Side-by-side timing that a shared, busy machine cannot fool: interleaved rounds, paired ratios.

A background job slows whatever runs while it runs. So the variants of one comparison are timed
in rounds, one call each per round, the order rotated from round to round; each round gives every
variant's rate and its ratio to the round's baseline (the first variant), measured seconds apart.
Rounds continue until every ratio's median is stable (`Measurement.settled`) or the time budget is
spent, and tables report the median with the min..max over rounds. Every figure is printed as it
is measured (``python -m benchmarks`` streams them), the table comes at the end of each section.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

SMOKE = os.environ.get("BENCH_SMOKE") == "1"
"""``BENCH_SMOKE=1`` (`make bench-smoke`, run by CI): every benchmark runs its whole code once at its smallest
size, one round without warm-up, and writes nothing: it proves the benchmarks still run, its figures mean nothing."""

RELATIVE_PRECISION = 0.03
"""Stop when the median ratio's uncertainty (interquartile half-range / sqrt(rounds)) is below 3%."""


def say(message: str) -> None:
    """Print one progress line now (benchmarks stream their figures as they are measured)."""
    print(f"  {message}", file=sys.stderr, flush=True)


def synchronize() -> None:
    """Wait for queued CUDA work, so that it counts in the call that queued it."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of `fn`, queued CUDA work included."""
    synchronize()
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


@dataclass
class Stats:
    """Values over rounds: median, min and max."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def uncertainty(self) -> float:
        """Relative uncertainty of the median: interquartile half-range / median / sqrt(n)."""
        if len(self.values) < 3:
            return float("inf")
        q1, _, q3 = statistics.quantiles(self.values, n=4)
        return (q3 - q1) / 2 / abs(self.median) / len(self.values) ** 0.5

    def reciprocal(self) -> Stats:
        """1/value per round: seconds per call from calls per second, or the inverse of a ratio."""
        return Stats([1 / value for value in self.values])

    def cell(self, fmt: str = "{:.2f}", suffix: str = "") -> str:
        """``median (min-max)`` for a table cell."""
        low, high = min(self.values), max(self.values)
        return f"{fmt.format(self.median)}{suffix} ({fmt.format(low)}-{fmt.format(high)})"


@dataclass
class Measurement:
    """Rates (units per second) and paired ratios to the first variant, per round."""

    names: list[str]
    rates: dict[str, Stats]
    ratios: dict[str, Stats]

    def settled(self, precision: float = RELATIVE_PRECISION) -> bool:
        """Whether the median of every ratio is known to `precision` (relative)."""
        return all(self.ratios[name].uncertainty() < precision for name in self.names[1:])


def interleave(
    variants: dict[str, Callable[[], float]],
    label: str,
    min_rounds: int = 3,
    max_rounds: int = 15,
    budget_s: float = 30.0,
    warmup: int = 1,
    unit: str = "img/s",
) -> Measurement:
    """Time `variants` side by side; each call returns the units of work it did per second.

    The first variant is the baseline of the ratios. Every variant is called `warmup` times
    untimed first. Rounds stop after `min_rounds` once the ratios settle, at `max_rounds`, or when
    `budget_s` seconds have passed (never before `min_rounds`).
    """
    names = list(variants)
    if SMOKE:
        warmup, min_rounds, max_rounds = 0, 1, 1
    for name in names:
        for _ in range(warmup):
            variants[name]()
    result = Measurement(names, {n: Stats() for n in names}, {n: Stats() for n in names})
    start = time.perf_counter()
    for round_index in range(max_rounds):
        # rotate the order so that no variant always runs right after the same neighbour
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        rates = {name: variants[name]() for name in order}
        for name in names:
            result.rates[name].values.append(rates[name])
            result.ratios[name].values.append(rates[name] / rates[names[0]])
        figures = ", ".join(f"{name} {rates[name]:.3g}" for name in names)
        say(f"{label} round {round_index + 1}: {figures} {unit}")
        done = round_index + 1 >= min_rounds
        if done and (result.settled() or time.perf_counter() - start > budget_s):
            break
    return result


def rate(fn: Callable[[], object], units: float) -> Callable[[], float]:
    """A variant for `interleave`: `units` of work per second of one call of `fn`."""
    return lambda: units / seconds(fn)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
