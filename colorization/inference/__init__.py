"""Inference in plain PyTorch: each family's network and what it does around it, loading, releases, precision."""
