"""Zhang et al.'s colorization networks, with exactly the official release's parameter names.

`ECCV16Net` ("Colorful Image Colorization", ECCV 2016) classifies each pixel of a quarter-
resolution grid into ab bins; `SIGGRAPH17Net` ("Real-Time User-Guided Image Colorization",
SIGGRAPH 2017) is a U-Net-like variant that also reads user hints and regresses ab directly.
Layer names and shapes equal the official ``.pth`` files (see `colorization.files.weights`), so those
load with `load_state_dict(strict=True)`.

Both take L in [0, 100] and normalise it as the release does, ``(L - 50) / 100``; ab leaves and
enters the networks divided by 110 (`AB_SCALE`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from colorization.color.spaces import AB_SCALE
from colorization.networks.base import Network

L_CENTRE = 50.0
L_NORM = 100.0
ECCV16_BINS = 313
"""Bins of the official ECCV16 release (its `model_out` holds their centres / 110)."""
SIGGRAPH17_CLASSES = 529
"""23 x 23 grid of ab with step 10 and |a|, |b| <= 110: the SIGGRAPH17 classification head."""
TRUNK_STRIDE = 8
"""Both trunks downsample three times by 2."""


def normalize_l_zhang(l: Tensor) -> Tensor:
    """L in [0, 100] -> the release's network input ``(L - 50) / 100`` in [-0.5, 0.5]."""
    return (l - L_CENTRE) / L_NORM


def conv_block(channels: list[int], stride_last: int = 1, dilation: int = 1) -> nn.Sequential:
    """[conv 3x3 -> ReLU] per channel step, then BatchNorm (the release's block layout and indices).

    ``channels=[64, 128, 128]`` gives conv 64->128, ReLU, conv 128->128, ReLU, BN(128); the last
    convolution has stride `stride_last`.
    """
    layers: list[nn.Module] = []
    steps = list(zip(channels[:-1], channels[1:], strict=True))
    for k, (c_in, c_out) in enumerate(steps):
        stride = stride_last if k == len(steps) - 1 else 1
        layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCV16Net(Network):
    """ECCV16 network: L -> bin logits at 1/4 resolution (`logits`) -> ab at full resolution (`forward`).

    Eight blocks (the trunk downsamples with strided convolutions, blocks 5-6 are dilated, block 8
    upsamples once), then a 1x1 convolution to `num_bins` logits. `model_out` is a bias-free 1x1
    convolution whose weights are the bin centres / 110, so ``model_out(softmax(logits))`` is the
    expected ab / 110; it is part of the official weights, not trained. 32,236,011 parameters with
    313 bins.
    """

    def __init__(self, num_bins: int = ECCV16_BINS) -> None:
        super().__init__()
        self.model1 = conv_block([1, 64, 64], stride_last=2)
        self.model2 = conv_block([64, 128, 128], stride_last=2)
        self.model3 = conv_block([128, 256, 256, 256], stride_last=2)
        self.model4 = conv_block([256, 512, 512, 512])
        self.model5 = conv_block([512, 512, 512, 512], dilation=2)
        self.model6 = conv_block([512, 512, 512, 512], dilation=2)
        self.model7 = conv_block([512, 512, 512, 512])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, num_bins, 1),
        )
        self.model_out = nn.Conv2d(num_bins, 2, 1, bias=False)
        self.model_out.weight.requires_grad_(False)

    @property
    def num_bins(self) -> int:
        """Number of ab bins the network classifies into."""
        return self.model_out.in_channels

    def logits(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, num_bins, h, w) bin logits, h = 2 ceil(H / 8) (= H/4 for H % 8 == 0)."""
        x = normalize_l_zhang(l)
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7):
            x = block(x)
        return self.model8(x)

    def decode(self, logits: Tensor, size: tuple[int, int], temperature: float = 1.0) -> Tensor:
        """Annealed mean of the bin distribution ``softmax(logits / T)``, upsampled to `size`: (B, 2, *size) ab.

        With ``temperature=1`` this is the official release's output.
        """
        ab_norm = self.model_out(F.softmax(logits / temperature, dim=1))
        return F.interpolate(ab_norm, size=size, mode="bilinear", align_corners=False) * AB_SCALE

    def forward(self, l: Tensor, temperature: float = 1.0) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, 2, H, W) ab: the release's forward (for T = 1)."""
        return self.decode(self.logits(l), tuple(l.shape[-2:]), temperature)


class SIGGRAPH17Net(Network):
    """SIGGRAPH17 network: L + ab hints + hint mask -> 529-class logits (1/4 res.) and regressed ab.

    The trunk is ECCV16's without strides (it subsamples by slicing ``x[:, :, ::2, ::2]`` between
    blocks 1-4); a decoder with additive skips from blocks 3, 2 and 1 returns to full resolution.
    `model_class` (on block 8, 1/4 resolution) classifies into the 23 x 23 ab grid; `model_out`
    regresses ab / 110 with a tanh. 34,187,027 parameters. Any input size works: inputs are padded
    to a multiple of 8 and outputs cropped back.
    """

    def __init__(self, num_classes: int = SIGGRAPH17_CLASSES) -> None:
        super().__init__()
        self.model1 = conv_block([4, 64, 64])
        self.model2 = conv_block([64, 128, 128])
        self.model3 = conv_block([128, 256, 256, 256])
        self.model4 = conv_block([256, 512, 512, 512])
        self.model5 = conv_block([512, 512, 512, 512], dilation=2)
        self.model6 = conv_block([512, 512, 512, 512], dilation=2)
        self.model7 = conv_block([512, 512, 512, 512])
        # attribute order = the release's state-dict order
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model8 = nn.Sequential(
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.BatchNorm2d(256),
        )
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model9 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(128)
        )
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model_class = nn.Sequential(nn.Conv2d(256, num_classes, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(
        self,
        l: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        train_trunk_with: str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """(B, 1, H, W) L in [0, 100], optional (B, 2, H, W) hint ab and (B, 1, H, W) 0/1 mask.

        Returns (B, num_classes, ceil(H/4), ceil(W/4)) class logits and (B, 2, H, W) ab. Without
        hints, hint ab and mask are zeros (the release's convention). `train_trunk_with` sets which
        head's gradient reaches the shared layers during training, as in the reference two-stage
        recipe: ``"classification"`` detaches the regression decoder from blocks 1-8,
        ``"regression"`` detaches the classification head; None (inference) detaches nothing.
        """
        height, width = l.shape[-2:]
        if hint_ab is None:
            hint_ab = l.new_zeros(l.shape[0], 2, height, width)
        if hint_mask is None:
            hint_mask = l.new_zeros(l.shape[0], 1, height, width)
        x = stack_padded(normalize_l_zhang(l), hint_ab / AB_SCALE, hint_mask)
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        conv7 = self.model7(self.model6(self.model5(x)))
        conv8 = self.model8(self.model8up(conv7) + self.model3short8(conv3))

        def regression_input(t: Tensor) -> Tensor:
            return t.detach() if train_trunk_with == "classification" else t

        logits = self.model_class(conv8.detach() if train_trunk_with == "regression" else conv8)
        conv9 = self.model9(self.model9up(regression_input(conv8)) + self.model2short9(regression_input(conv2)))
        conv10 = self.model10(self.model10up(conv9) + self.model1short10(regression_input(conv1)))
        ab = self.model_out(conv10) * AB_SCALE
        return logits[:, :, : -(-height // 4), : -(-width // 4)], ab[:, :, :height, :width]


def stack_padded(*planes: Tensor) -> Tensor:
    """Concatenate (B, c, H, W) planes and pad the result at the bottom/right to a multiple of `TRUNK_STRIDE`.

    L is padded by replication (no artificial edge), hints and mask by zeros (no hint there).
    """
    height, width = planes[0].shape[-2:]
    pad = (0, -width % TRUNK_STRIDE, 0, -height % TRUNK_STRIDE)
    if pad == (0, 0, 0, 0):
        return torch.cat(planes, dim=1)
    l = F.pad(planes[0], pad, mode="replicate")
    return torch.cat([l, *(F.pad(p, pad) for p in planes[1:])], dim=1)
