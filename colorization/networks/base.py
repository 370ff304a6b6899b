"""What every network tells the module that runs it: the input sizes it accepts.

A network states its limits as `size_multiple` (height and width must be multiples of it) and
`min_size` (both at least this many pixels), and `size_setting`, the constructor argument that sets
them. `ColorizerModule.setup` checks the data's crop sizes against them before any training and
names the config keys; the network itself only rejects a tensor it cannot take (`ValueError`).
"""

from __future__ import annotations

from torch import Tensor, nn


class Network(nn.Module):
    """Base class of the colorization networks: input-size limits and their check."""

    size_multiple: int = 1
    min_size: int = 1
    size_setting: str | None = None
    """The constructor argument that sets `size_multiple`/`min_size` (named in error messages)."""

    @property
    def working_multiple(self) -> int:
        """Sides that inference rounds photos to: `size_multiple`, or a coarser multiple the network prefers."""
        return self.size_multiple

    def fits(self, size: int) -> bool:
        """Whether an image side of `size` pixels is accepted."""
        return size >= self.min_size and size % self.size_multiple == 0

    def requirement(self) -> str:
        """What `fits` asks for, in words: 'a multiple of 32', '>= 70' or both."""
        parts = [f"a multiple of {self.size_multiple}"] if self.size_multiple > 1 else []
        if self.min_size > self.size_multiple:
            parts.append(f">= {self.min_size}")
        return " and ".join(parts) or "any size"

    def check_input(self, x: Tensor) -> None:
        """Raise `ValueError` when the (B, C, H, W) input's height or width does not fit."""
        height, width = x.shape[-2:]
        if not (self.fits(height) and self.fits(width)):
            raise ValueError(f"input of {height}x{width} pixels does not fit: sides must be {self.requirement()}")
