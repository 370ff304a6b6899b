"""Networks: plain `nn.Module`s, no training logic. Each is selected by a `conf/model/*.yaml`."""

from colorization.models.cnn import StudyCNN
from colorization.models.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer

__all__ = ["ECCV16Colorizer", "SIGGRAPH17Colorizer", "StudyCNN"]
