"""Run the benchmarks and rewrite their sections of BENCHMARKS.md.

    python -m benchmarks                 every benchmarks/bench_*.py, in name order
    python -m benchmarks train infer     some of them
    python -m benchmarks --no-write eval print only

Each `bench_<name>.run()` prints its figures as it measures them (stderr) and returns a
`benchmarks.sections.Section`, which goes, under its provenance line, between its markers in
BENCHMARKS.md; the summary table on top is rebuilt each time. BENCHMARKS.md is rewritten after
each benchmark, so an interrupted run keeps what it measured.

``BENCH_SMOKE=1`` runs each benchmark once at its smallest size and writes nothing (`benchmarks.timing.SMOKE`).
Benchmarks compute with ``BENCH_THREADS`` torch threads (default 1: on a shared machine one thread
per process gives the steadiest ratios; see `colorization.jobs.threads`).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.sections import (
    DOCUMENT,
    WHOLE_RUN,
    WHOLE_RUN_GOAL_S,
    Summary,
    baseline_figure,
    commit,
    now_utc,
    place,
    provenance,
    summarize,
    verdict,
)
from benchmarks.timing import SMOKE


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def quiet() -> None:
    """Keep the stream to the figures: Lightning's per-fit banners and hints are silenced."""
    import lightning.pytorch  # noqa: F401  (it sets its loggers' levels on import: import it first)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_utilities"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning\..*")
    warnings.filterwarnings("ignore", message=r".*pin_memory.*")


def main(argv: list[str]) -> None:
    write = "--no-write" not in argv and not SMOKE
    names = [a for a in argv if a != "--no-write"]
    unknown = sorted(set(names) - set(available()))
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {unknown}; expected some of {available()}")
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    quiet()
    measured_commit = commit()  # before any section is written
    run_start, run_load = time.perf_counter(), os.getloadavg()[0]
    for name in names or available():
        print(f"== {name}", file=sys.stderr, flush=True)
        load_start, start = os.getloadavg()[0], time.perf_counter()
        section = importlib.import_module(f"benchmarks.bench_{name}").run()
        if not section.summary.before:
            section = replace(section, summary=replace(section.summary, before=baseline_figure(name)))
        elapsed = time.perf_counter() - start
        text = section.render(provenance(name, elapsed, (load_start, os.getloadavg()[0]), measured_commit))
        print(text, flush=True)
        if write:
            document = DOCUMENT.read_text() if DOCUMENT.is_file() else "# Benchmarks\n"
            DOCUMENT.write_text(summarize(place(document, name, text)))
            print(f"({name}: {elapsed:.0f} s, written to {DOCUMENT.name})", file=sys.stderr, flush=True)
    total = time.perf_counter() - run_start
    print(f"(all: {total:.0f} s)", file=sys.stderr, flush=True)
    if write and not names:
        whole_run = Summary(
            WHOLE_RUN,
            f"{total:.0f} s ({now_utc()}, commit {measured_commit}, load average {run_load:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end)",
            f"< {WHOLE_RUN_GOAL_S // 60} minutes",
            verdict(total < WHOLE_RUN_GOAL_S),
            before=baseline_figure(WHOLE_RUN),
        )
        DOCUMENT.write_text(summarize(DOCUMENT.read_text(), whole_run))


if __name__ == "__main__":
    main(sys.argv[1:])
