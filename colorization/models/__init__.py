"""Networks: plain `nn.Module`s, no training logic. Each is selected by a `conf/model/*.yaml`."""

from colorization.models.cnn import StudyCNN

__all__ = ["StudyCNN"]
