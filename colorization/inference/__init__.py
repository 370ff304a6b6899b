"""Inference in plain PyTorch, no Lightning: each family's network and what it does around it (`base`,
`direct`, `zhang`, `ddcolor`, `onnx`), the release table (`releases`), loading a checkpoint or release
file (`loading`, `sources`), and where and how a colorizer runs (`runtime`)."""

PRECISIONS = ("fp32", "bf16")
"""Numeric precisions a colorizer runs in (`runtime.resolve_precision`); defined here, where the command
lines can list them without importing torch."""
AUTO = "auto"
