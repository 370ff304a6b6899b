"""Losses shared by model families.

Generator losses of DDColor's recipe (on sRGB in [0, 1]):

- `PerceptualLoss`: sum_k w_k mean|phi_k(pred) - phi_k(target)| over VGG16-BN's conv1_1 ..
  conv5_1 outputs (before BatchNorm) with weights 1/16, 1/8, 1/4, 1/2, 1; the VGG is frozen, its
  BatchNorm uses ImageNet statistics, and it reads ImageNet-normalised input (BasicSR's
  ``PerceptualLoss``, criterion L1).
- `colorfulness_loss`: sum over the batch of (1 - CF) with CF Hasler & Suesstrunk's colorfulness
  on [0, 1] sRGB, so more colourful predictions lower it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.colorspaces import IMAGENET_MEAN, IMAGENET_STD
from colorization.metrics import colorfulness_of_rgb
from colorization.models.vgg import VGG16BNFeatures
from colorization.weights import load_strict, read_state_dict

PERCEPTUAL_LAYER_WEIGHTS: dict[str, float] = {
    "conv1_1": 1 / 16,
    "conv2_1": 1 / 8,
    "conv3_1": 1 / 4,
    "conv4_1": 1 / 2,
    "conv5_1": 1.0,
}
"""DDColor's layer weights: deeper, more semantic features count more."""
COLORFULNESS_EPS = 1e-8
"""Keeps the colorfulness gradient finite when a prediction is exactly gray."""


class PerceptualLoss(nn.Module):
    """Weighted L1 distance between VGG16-BN features of prediction and target (see the module docstring)."""

    def __init__(self, vgg: VGG16BNFeatures, layer_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.layer_weights = dict(PERCEPTUAL_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        unknown = set(self.layer_weights) - set(vgg.conv_index)
        if unknown:
            raise ValueError(f"perceptual layers {sorted(unknown)} are not VGG16-BN conv layers {list(vgg.conv_index)}")
        self.vgg = _frozen_out_of_state_dict(vgg)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: str | Path, layer_weights: dict[str, float] | None = None) -> PerceptualLoss:
        """The loss with torchvision's ImageNet VGG16-BN weights from `path` (``vgg16_bn-6c64b313.pth``).

        The file must hold every entry of the layers up to conv5_1 with its shape; the deeper
        layers and the classifier are not used and skipped. `DataError` otherwise.
        """
        vgg = VGG16BNFeatures()
        depth = len(vgg.features)

        def beyond_conv5_1(key: str) -> bool:
            parts = key.split(".")
            return parts[0] == "classifier" or (
                parts[0] == "features" and parts[1].isdigit() and int(parts[1]) >= depth
            )

        load_strict(vgg, read_state_dict(path), path, unused=beyond_conv5_1)
        return cls(vgg, layer_weights)

    def forward(self, pred_rgb: Tensor, target_rgb: Tensor) -> Tensor:
        """(B, 3, H, W) sRGB in [0, 1], prediction and target -> scalar loss (differentiable w.r.t. `pred_rgb`)."""
        layers = list(self.layer_weights)
        pred = self.vgg((pred_rgb - self.mean) / self.std, layers)
        with torch.no_grad():
            target = self.vgg((target_rgb - self.mean) / self.std, layers)
        return sum(w * F.l1_loss(pred[name], target[name]) for name, w in self.layer_weights.items())


def _frozen_out_of_state_dict(net: nn.Module) -> nn.Module:
    """`net` with every parameter and buffer turned into a non-persistent buffer.

    A frozen loss network then follows the module across devices but stays out of its state dict
    and optimizers: checkpoints of the model it trains do not carry a copy of the weights file.
    """
    for module in net.modules():
        tensors = {**module._parameters, **module._buffers}
        module._parameters.clear()
        for name, tensor in tensors.items():
            if name in module._buffers:
                del module._buffers[name]
            if tensor is not None:
                module.register_buffer(name, tensor.detach(), persistent=False)
    return net


def colorfulness_loss(rgb: Tensor) -> Tensor:
    """sum over the (B, 3, H, W) batch of sRGB in [0, 1] of (1 - colorfulness): DDColor's colourfulness loss."""
    return (1.0 - colorfulness_of_rgb(rgb, eps=COLORFULNESS_EPS)).sum()
