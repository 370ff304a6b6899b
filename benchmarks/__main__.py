"""Run the benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks cnn`` (some)."""

import importlib
import sys
from pathlib import Path


def main(names: list[str]) -> None:
    available = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    unknown = sorted(set(names) - set(available))
    if unknown:
        sys.exit(f"error: unknown benchmark(s) {unknown}; expected some of {available}")
    for name in names or available:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(module.run(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
