"""Small building blocks shared by the networks."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RangeActivation(nn.Module):
    """Squash logits into (low, high) with a scaled sigmoid, so every target value is reachable.

    For (-1, 1) this equals tanh(x / 2); for (0, 1) it is the plain sigmoid.
    """

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        if not high > low:
            raise ValueError(f"output range ({low}, {high}) is empty")
        self.low, self.high = float(low), float(high)

    def forward(self, x: Tensor) -> Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(x)

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"
