"""Run the benchmarks and rewrite their sections of BENCHMARKS.md.

    python -m benchmarks                 every benchmarks/bench_*.py, in name order
    python -m benchmarks train infer     some of them
    python -m benchmarks --no-write cnn  print only

Each `bench_<name>.run()` prints its figures as it measures them (stderr) and returns a markdown
section. The section goes between ``<!-- bench:<name> -->`` and ``<!-- /bench:<name> -->`` in
BENCHMARKS.md, headed by the command, machine, torch version, threads and date; a section with no
markers yet is appended. Everything outside the markers (notes, GPU figures) is kept as it is.
BENCHMARKS.md is rewritten after each benchmark, so an interrupted run keeps what it measured.

``BENCH_SMOKE=1`` runs each benchmark once at its smallest size and writes nothing (`benchmarks.timing.SMOKE`).
Benchmarks compute with ``BENCH_THREADS`` torch threads (default 1: on a shared machine one thread
per process gives the steadiest ratios; see `colorization.jobs.threads`).
"""

from __future__ import annotations

import datetime
import importlib
import logging
import os
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import torch

from benchmarks.timing import SMOKE

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "BENCHMARKS.md"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))


def machine() -> str:
    """CPU model, cores, GPU (if any), torch version and threads, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} CPUs{gpu}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"


def provenance(name: str, seconds: float, load: tuple[float, float]) -> str:
    """The line under a section's title: how, where and when it was measured."""
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Command: `make bench ARGS={name}` (`python -m benchmarks {name}`); {machine()}; {date}; "
        f"{seconds:.0f} s; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end "
        "(a machine shared with other jobs: compare ratios, not absolute rates)."
    )


def place(document: str, name: str, section: str) -> str:
    """`document` with the marked section of `name` replaced by `section` (appended if absent)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: block, document, count=1)
    return document.rstrip("\n") + "\n\n" + block + "\n"


def with_provenance(section: str, line: str) -> str:
    """Insert the provenance `line` after the section's first (title) line."""
    title, _, body = section.strip().partition("\n")
    return f"{title}\n\n{line}\n\n{body.strip()}\n" if title.startswith("#") else f"{line}\n\n{section.strip()}\n"


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
    for name in names or available():
        print(f"== {name}", file=sys.stderr, flush=True)
        load_start, start = os.getloadavg()[0], time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        section = module.run()
        elapsed = time.perf_counter() - start
        section = with_provenance(section, provenance(name, elapsed, (load_start, os.getloadavg()[0])))
        print(section, flush=True)
        if write:
            document = DOCUMENT.read_text() if DOCUMENT.is_file() else "# Benchmarks\n"
            DOCUMENT.write_text(place(document, name, section))
            print(f"({name}: {elapsed:.0f} s, written to {DOCUMENT.name})", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
