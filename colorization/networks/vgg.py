"""VGG16 with BatchNorm (Simonyan & Zisserman 2015), its convolutional part through conv5_1.

The layers sit where torchvision's ``vgg16_bn`` has them (``features.<index>``), so its ImageNet
file (``vgg16_bn-6c64b313.pth``) loads by name; each conv is followed by BatchNorm and ReLU, each
block by 2x2 max pooling. The perceptual loss reads the raw conv outputs (before BatchNorm).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512,))
"""Output channels of each conv, block by block, up to conv5_1."""


def conv_names() -> list[str]:
    """'conv1_1', 'conv1_2', 'conv2_1', ... 'conv5_1' in network order."""
    return [f"conv{b + 1}_{c + 1}" for b, block in enumerate(BLOCKS) for c in range(len(block))]


class VGG16BNFeatures(nn.Module):
    """torchvision's ``vgg16_bn.features[:35]``: input (B, 3, H, W) ImageNet-normalised RGB.

    A fixed feature extractor: its BatchNorm layers always normalise with their stored (ImageNet)
    statistics, in train mode too, so the model it serves can train without special-casing it.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.conv_index: dict[str, int] = {}
        in_channels = 3
        names = iter(conv_names())
        for b, block in enumerate(BLOCKS):
            if b > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
            for out_channels in block:
                self.conv_index[next(names)] = len(layers)
                layers += [
                    nn.Conv2d(in_channels, out_channels, 3, padding=1),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(True),
                ]
                in_channels = out_channels
        # conv5_1 ends the network: its BatchNorm and ReLU would feed nothing
        self.features = nn.Sequential(*layers[: self.conv_index["conv5_1"] + 1])

    def forward(self, x: Tensor, layers: list[str]) -> dict[str, Tensor]:
        """The raw outputs of the named conv layers (e.g. 'conv3_1'), computed only as deep as needed."""
        wanted = {self.conv_index[name]: name for name in layers}
        out = {}
        for index, layer in enumerate(self.features[: max(wanted) + 1]):
            if isinstance(layer, nn.BatchNorm2d):
                x = F.batch_norm(
                    x, layer.running_mean, layer.running_var, layer.weight, layer.bias, False, 0.0, layer.eps
                )
            else:
                x = layer(x)
            if index in wanted:
                out[wanted[index]] = x
        return out
