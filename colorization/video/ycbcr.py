"""A film's Y'CbCr planes and the project's Lab/sRGB: the two conversions a colorized film needs.

Video stores gamma-encoded luma Y' (a weighted sum of R'G'B' with the matrix's Kr, Kb) and two
colour differences Cb, Cr, as 8-bit codes in *limited* range (Y' 16..235, C 16..240) or *full*
range (0..255). Luma Y' is not CIE L*: it is computed from gamma-encoded values, so for a
coloured pixel the two disagree. For a gray pixel they agree exactly (R' = G' = B' = Y' for any
matrix), and a black-and-white film is gray, so:

- `luma_to_l`: the colorizer's L is the CIE L* of the gray sRGB colour whose value is the frame's
  Y' (through the project's one sRGB -> Lab conversion, a 256-entry table per range).
- `rgb_to_cbcr`: the colorized sRGB frame is converted to Y'CbCr with the *input's* matrix and
  range, and only Cb, Cr are kept; the output frame reuses the input's decoded Y' plane
  unchanged. So the output's luma is the input's bit for bit before encoding (and after it, with
  ``--crf 0``), whatever the model does; only chroma comes from the model, as for photos.

Chroma planes of 4:2:0 output are the mean of each 2x2 block of full-resolution Cb/Cr (a box
filter, "centre" siting; H.264's default "left" siting differs by a quarter of a chroma sample,
invisible in colour upsampled from a network's small output).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from colorization.color.spaces import rgb_to_lab

KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
"""Luma weights (Kr, Kb) of each matrix (ITU-R BT.601, BT.709, BT.2020 non-constant luminance)."""
FFMPEG_MATRICES = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020"}
"""FFmpeg's AVColorSpace codes -> matrix names (BT470BG and SMPTE170M both use BT.601's weights)."""
MATRIX_CODES = {"bt709": 1, "bt601": 6, "bt2020": 9}
"""Matrix name -> the AVColorSpace code an output stream is tagged with."""
FULL_RANGE_CODE = 2
LIMITED_RANGE_CODE = 1
"""FFmpeg's AVColorRange codes (JPEG = full, MPEG = limited; 0 is "unspecified")."""
HD_HEIGHT = 720
"""Untagged films at least this tall are taken as BT.709, smaller ones as BT.601 (as players guess)."""
LIMITED_Y = (16.0, 219.0)
LIMITED_C_SPAN = 224.0
FULL_SPAN = 255.0
"""8-bit code = offset + span x value: limited Y' 16 + 219 Y', limited C 128 + 224 C, full 255 x."""
CHROMA_ZERO = 128.0


@dataclass(frozen=True)
class YCbCrSpec:
    """How a film's 8-bit Y'CbCr codes map to gamma-encoded R'G'B' in [0, 1]."""

    matrix: str
    """``bt601``, ``bt709`` or ``bt2020``."""
    full_range: bool

    @property
    def range_code(self) -> int:
        return FULL_RANGE_CODE if self.full_range else LIMITED_RANGE_CODE

    @property
    def matrix_code(self) -> int:
        return MATRIX_CODES[self.matrix]


def spec_from_tags(colorspace: int, color_range: int, pix_fmt: str, height: int) -> YCbCrSpec:
    """The spec of a decoded frame from FFmpeg's tags; untagged frames get what players assume.

    Full range: a Y'CbCr frame tagged so, or a ``yuvj*`` / ``gray`` pixel format; frames stored as
    RGB are converted to limited range, what H.264 players expect. Matrix: the tag, else BT.709 for
    frames at least `HD_HEIGHT` tall and BT.601 below.
    """
    ycbcr = pix_fmt.startswith(("yuv", "nv"))
    full = (ycbcr and color_range == FULL_RANGE_CODE) or pix_fmt.startswith("yuvj") or pix_fmt == "gray"
    matrix = FFMPEG_MATRICES.get(colorspace, "bt709" if height >= HD_HEIGHT else "bt601")
    return YCbCrSpec(matrix=matrix, full_range=full)


def luma_to_unit(y: np.ndarray, spec: YCbCrSpec) -> np.ndarray:
    """(...) uint8 Y' codes -> float32 Y' in [0, 1] (limited-range codes outside 16..235 clipped)."""
    offset, span = (0.0, FULL_SPAN) if spec.full_range else LIMITED_Y
    return np.clip((y.astype(np.float32) - offset) / span, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _l_table(spec: YCbCrSpec) -> Tensor:
    """(256,) float32: CIE L* of the gray sRGB colour of each 8-bit Y' code."""
    gray = torch.from_numpy(luma_to_unit(np.arange(256, dtype=np.uint8), spec))
    rgb = gray.view(1, 1, 256, 1).expand(1, 3, 256, 1)
    return rgb_to_lab(rgb)[0, 0, :, 0].contiguous()


def luma_to_l(y: np.ndarray, spec: YCbCrSpec) -> Tensor:
    """(H, W) uint8 Y' plane -> (1, H, W) float32 L in [0, 100], the colorizer's input."""
    return _l_table(spec)[torch.from_numpy(y).long()].unsqueeze(0)


def rgb_to_cbcr(rgb: Tensor, spec: YCbCrSpec, subsample: bool) -> tuple[np.ndarray, np.ndarray]:
    """(3, H, W) sRGB in [0, 1] -> the (Cb, Cr) uint8 planes of the output frame.

    With `subsample` (4:2:0, even H and W) each plane is (H / 2, W / 2), the mean of each 2x2
    block; otherwise (H, W).
    """
    kr, kb = KR_KB[spec.matrix]
    r, g, b = rgb.float().clamp(0.0, 1.0)
    luma = kr * r + (1.0 - kr - kb) * g + kb * b
    chroma = torch.stack([(b - luma) / (2.0 * (1.0 - kb)), (r - luma) / (2.0 * (1.0 - kr))])  # each in [-0.5, 0.5]
    if subsample:
        chroma = torch.nn.functional.avg_pool2d(chroma.unsqueeze(0), 2).squeeze(0)
    span = FULL_SPAN if spec.full_range else LIMITED_C_SPAN
    codes = (CHROMA_ZERO + span * chroma).round().clamp(0, 255).to(torch.uint8).numpy()
    return codes[0], codes[1]
