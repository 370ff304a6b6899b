"""Networks: plain `nn.Module`s, no training logic. Each is selected by a `conf/model/*.yaml`."""

from colorization.models.base import Network
from colorization.models.cnn import StudyCNN
from colorization.models.ddcolor import DDColorColorizer
from colorization.models.patchgan import PatchDiscriminator
from colorization.models.resunet import ResUNetGenerator
from colorization.models.unet import UNetGenerator
from colorization.models.unet_discriminator import UNetDiscriminator
from colorization.models.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer

__all__ = [
    "DDColorColorizer",
    "ECCV16Colorizer",
    "Network",
    "PatchDiscriminator",
    "ResUNetGenerator",
    "SIGGRAPH17Colorizer",
    "StudyCNN",
    "UNetDiscriminator",
    "UNetGenerator",
]
