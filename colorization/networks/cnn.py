"""The study's hand-made 4-layer CNN: 2 convolutions down, 2 transposed convolutions back up."""

from __future__ import annotations

from torch import Tensor, nn

from colorization.errors import check_choice, check_int
from colorization.networks.base import Network
from colorization.networks.layers import RangeActivation

KERNEL = 3
MAX_STRIDE = 4
MAX_FILTERS = 1024
PADDINGS = {"valid": 0, "same": KERNEL // 2}


class StudyCNN(Network):
    """conv(s) -> ReLU -> conv -> ReLU -> convT -> ReLU -> convT(s) -> output activation.

    With ``padding="valid"`` the spatial size goes 224 -> 222 -> 220 -> 222 -> 224 (stride 1),
    as in the study; ``"same"`` keeps it constant. `stride` applies to the first convolution and
    the last transposed convolution, whose output is sized to the input, so any stride gives a
    full-size result. The study fed the gray image copied to three channels; here the input is
    the single L channel, which carries the same information.

    (B, 1, H, W) normalised L -> (B, out_channels, H, W) in `out_range`.
    """

    size_setting = "stride"

    def __init__(
        self,
        out_channels: int,
        out_range: tuple[float, float],
        filters: int = 12,
        stride: int = 1,
        padding: str = "valid",
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        check_int("model.net.filters", filters, 1, MAX_FILTERS)
        check_int("model.net.stride", stride, 1, MAX_STRIDE)
        check_choice("model.net.padding", padding, PADDINGS)
        pad = PADDINGS[padding]
        self.stride = stride
        self.down1 = nn.Conv2d(in_channels, filters, KERNEL, stride=stride, padding=pad)
        self.down2 = nn.Conv2d(filters, filters, KERNEL, padding=pad)
        self.up1 = nn.ConvTranspose2d(filters, filters, KERNEL, padding=pad)
        # on sides that are multiples of the stride this output padding restores the input size
        self.up2 = nn.ConvTranspose2d(
            filters, out_channels, KERNEL, stride=stride, padding=pad, output_padding=(2 * pad - KERNEL) % stride
        )
        self.relu = nn.ReLU()
        self.out = RangeActivation(*out_range)
        # valid: the second convolution needs >= 1 output pixel: (H - 3) // stride >= 2
        self.min_size = KERNEL + 2 * stride if padding == "valid" else 1

    @property
    def working_multiple(self) -> int:
        """Multiples of the stride all take `up2`'s fixed output padding; an exported graph (ONNX)
        needs that, as its transposed convolutions cannot pad by an amount computed from the input."""
        return self.stride

    def forward(self, l_norm: Tensor) -> Tensor:
        self.check_input(l_norm)
        x = self.relu(self.down1(l_norm))
        x = self.relu(self.down2(x))
        x = self.relu(self.up1(x))
        height, width = l_norm.shape[-2:]
        if height % self.stride or width % self.stride:
            # output_size picks the output padding that restores any other size
            return self.out(self.up2(x, output_size=(height, width)))
        return self.out(self.up2(x))
