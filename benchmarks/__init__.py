"""Benchmarks: `python -m benchmarks [name ...]` runs `benchmarks/bench_<name>.py` files.

Each module has a `run() -> str` that measures side by side in one process and returns a
markdown section; results are printed and can be pasted into BENCHMARKS.md with the command.
"""
