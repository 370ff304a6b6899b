"""Networks: plain `nn.Module`s, no training logic. Each is selected by a `conf/model/*.yaml`."""

from colorization.networks.base import Network
from colorization.networks.cnn import StudyCNN
from colorization.networks.ddcolor import DDColorColorizer
from colorization.networks.patchgan import PatchDiscriminator
from colorization.networks.resunet import ResUNetGenerator
from colorization.networks.unet import UNetGenerator
from colorization.networks.unet_discriminator import UNetDiscriminator
from colorization.networks.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer

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
