"""Networks: plain `nn.Module`s, no training logic. Each is selected by a `conf/model/*.yaml`."""

from colorization.networks.base import Network
from colorization.networks.cnn import StudyCNN
from colorization.networks.ddcolor import DDColorNet
from colorization.networks.patchgan import PatchDiscriminator
from colorization.networks.resunet import ResUNetGenerator
from colorization.networks.unet import UNetGenerator
from colorization.networks.unet_discriminator import UNetDiscriminator
from colorization.networks.zhang import ECCV16Net, SIGGRAPH17Net

__all__ = [
    "DDColorNet",
    "ECCV16Net",
    "Network",
    "PatchDiscriminator",
    "ResUNetGenerator",
    "SIGGRAPH17Net",
    "StudyCNN",
    "UNetDiscriminator",
    "UNetGenerator",
]
