"""Benchmarks: `python -m benchmarks [name ...]` runs `benchmarks/bench_<name>.py` files, one per recurring question.

Each module has a `run()` that measures side by side in one process (`benchmarks.timing`) and returns a
`benchmarks.sections.Section`, which `python -m benchmarks` writes into its marked part of BENCHMARKS.md.
A new benchmark is one `bench_<name>.py` file: the runner finds it, and its section is appended.
"""
