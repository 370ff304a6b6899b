"""Colour spaces a model can predict in, all in one place.

Every model reads the L channel of CIE Lab and predicts a target tensor in one of these spaces.
A `ColorSpace` turns the data's (L, ab) into that target, and turns a prediction back into Lab and
sRGB for metrics and pictures. Decoding always re-attaches the *input* L: luminance is known, a
colorizer only supplies chroma, so every space is scored on the same footing (CIE76 is then the
ab distance).

Units used throughout the project:
- L: CIE L* in [0, 100]; a, b: CIE a*, b* in about [-110, 110] for sRGB colours (D65, 2 deg).
- sRGB: gamma-encoded, float in [0, 1].

Spaces (target ranges are what the network's output activation must reach):
- ``lab``: target ab / 110, two channels in about [-1, 1] (tanh output).
- ``rgb``: target sRGB, three channels in [0, 1] (sigmoid output).
- ``hls``: target (H / 2pi, L, S) from kornia's HLS, three channels in [0, 1] (sigmoid output).
  Unlike OpenCV's 8-bit HLS (H in 0..180) the hue is normalised over its full turn.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import kornia.color
import torch
from torch import Tensor

from colorization.errors import ConfigError

AB_SCALE = 110.0
"""Divides a*, b* into about [-1, 1]: the sRGB gamut's chroma stays within |ab| <= 110."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel statistics of ImageNet's sRGB in [0, 1]: how ImageNet-trained networks expect their input."""


def normalize_l(l: Tensor) -> Tensor:
    """Map L in [0, 100] to [-1, 1], the network input used by the regression and GAN families."""
    return l / 50.0 - 1.0


def lab_to_rgb(lab: Tensor) -> Tensor:
    """(B, 3, H, W) Lab -> (B, 3, H, W) sRGB in [0, 1] (out-of-gamut colours clipped)."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) Lab (L in [0, 100])."""
    return kornia.color.rgb_to_lab(rgb)


GAMUT_STEPS = 8
"""Bisection steps of `lab_to_rgb_keep_l`: the chroma kept is within 2**-8 of the most that fits."""
D65_WHITE = (0.95047, 1.0, 1.08883)
"""The XYZ of the D65 white that Lab is relative to (kornia's)."""
LAB_F_KNEE = 0.2068966
"""Where CIE's f(t) switches from the cube to its linear segment (kornia's constant, about 6/29)."""
XYZ_TO_LINEAR_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
"""D65 XYZ -> linear sRGB (kornia's `xyz_to_rgb` matrix), for the gamut test of single colours."""


def lab_to_rgb_keep_l(lab: Tensor, steps: int = GAMUT_STEPS) -> Tensor:
    """(B, 3, H, W) Lab -> (B, 3, H, W) sRGB in [0, 1] whose L* is the input's.

    `lab_to_rgb` clips out-of-gamut colours channel by channel, which shifts their lightness;
    a photo's output must keep its own luminance, so here each out-of-gamut pixel instead has
    its chroma (a*, b*) scaled down, by bisection, until it fits (hue and L* unchanged).

    The gamut test runs on linear RGB (`_lab_to_linear_rgb`): the sRGB transfer curve is monotone
    and keeps 0 and 1, so a colour fits exactly when its linear RGB lies in [0, 1], and the
    bisection (`_chroma_scale`) never pays for the curve's powers. Pixels inside the gamut are
    kornia's sRGB bit for bit; the others match a bisection through kornia's whole conversion to
    within one 8-bit code on a few pixels in a million.
    """
    linear = _lab_to_linear_rgb(lab)
    outside = ((linear < 0) | (linear > 1)).any(dim=1)  # (B, H, W)
    rgb = kornia.color.linear_rgb_to_rgb(linear)
    if not outside.any():
        return rgb.clamp(0.0, 1.0)
    pixels = lab.permute(0, 2, 3, 1)[outside]  # (N, 3)
    l, ab = pixels[:, :1], pixels[:, 1:]
    fitted = kornia.color.lab_to_rgb(torch.cat([l, ab * _chroma_scale(pixels, steps)], dim=1).T[None, :, :, None])
    rgb = rgb.permute(0, 2, 3, 1)
    rgb[outside] = fitted[0, :, :, 0].T
    return rgb.permute(0, 3, 1, 2).clamp(0.0, 1.0)


def _lab_to_linear_rgb(lab: Tensor) -> Tensor:
    """(B, 3, H, W) Lab -> linear RGB (unclipped): kornia's `lab_to_rgb` before its transfer curve."""
    l, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    fy = (l + 16.0) / 116.0
    fxyz = torch.stack([a / 500.0 + fy, fy, (fy - b / 200.0).clamp(min=0.0)], dim=1)
    white = torch.tensor(D65_WHITE, device=lab.device, dtype=lab.dtype)[:, None, None]
    return kornia.color.xyz_to_rgb(_f_inverse(fxyz) * white)


def _f_inverse(f: Tensor) -> Tensor:
    """CIE's f^-1: Lab's f(X / Xn) (and of Y, Z) -> X / Xn, as kornia computes it."""
    return torch.where(f > LAB_F_KNEE, torch.pow(f, 3.0), (f - 4.0 / 29.0) / 7.787)


def _chroma_scale(pixels: Tensor, steps: int) -> Tensor:
    """(N, 3) Lab out of the sRGB gamut -> (N, 1) the largest scale of their a*, b* in [0, 1] that fits,
    to within 2**-steps below, by bisection.

    L* fixes Y, so each step computes only X and Z of the scaled chroma and their linear RGB.
    """
    l, a, b = pixels.T  # (N,) each
    fy = (l + 16.0) / 116.0
    xyz_to_linear = torch.tensor(XYZ_TO_LINEAR_RGB, device=pixels.device, dtype=pixels.dtype)
    from_y = xyz_to_linear[:, 1:2] * _f_inverse(fy)  # (3, N)
    low, high = torch.zeros_like(l), torch.ones_like(l)  # scales known to fit / not to fit
    for _ in range(steps):
        middle = (low + high) / 2
        x = _f_inverse((a * middle) / 500.0 + fy) * D65_WHITE[0]
        z = _f_inverse((fy - (b * middle) / 200.0).clamp(min=0.0)) * D65_WHITE[2]
        linear = xyz_to_linear[:, :1] * x + from_y + xyz_to_linear[:, 2:] * z  # (3, N)
        fits = ((linear >= 0) & (linear <= 1)).all(dim=0)
        low, high = torch.where(fits, middle, low), torch.where(fits, high, middle)
    return low[:, None]


def gray_rgb(l: Tensor) -> Tensor:
    """(B, 1, H, W) L -> (B, 3, H, W) the gray sRGB in [0, 1] of that lightness (Lab with a = b = 0).

    The three channels are exactly equal (their mean: the conversion's rounding differs per channel).
    """
    rgb = lab_to_rgb(torch.cat([l, torch.zeros_like(l), torch.zeros_like(l)], dim=1))
    return rgb.mean(1, keepdim=True).expand(-1, 3, -1, -1)


class ColorSpace(ABC):
    """How a model's prediction encodes colour; see the module docstring for ranges."""

    name: str
    channels: int
    output_range: tuple[float, float]

    @abstractmethod
    def encode(self, l: Tensor, ab: Tensor) -> Tensor:
        """(B, 1, H, W) L and (B, 2, H, W) ab -> (B, channels, H, W) target."""

    @abstractmethod
    def decode_ab(self, l: Tensor, pred: Tensor) -> Tensor:
        """(B, 1, H, W) input L and (B, channels, H, W) prediction -> (B, 2, H, W) ab."""

    def decode_lab(self, l: Tensor, pred: Tensor) -> Tensor:
        """Prediction -> (B, 3, H, W) Lab carrying the input L."""
        return torch.cat([l, self.decode_ab(l, pred)], dim=1)

    def decode_rgb(self, l: Tensor, pred: Tensor) -> Tensor:
        """Prediction -> (B, 3, H, W) sRGB in [0, 1] carrying the input L."""
        return lab_to_rgb(self.decode_lab(l, pred))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LabSpace(ColorSpace):
    """Predict a*, b* directly, scaled by 1/110."""

    name = "lab"
    channels = 2
    output_range = (-1.0, 1.0)

    def encode(self, l: Tensor, ab: Tensor) -> Tensor:
        return ab / AB_SCALE

    def decode_ab(self, l: Tensor, pred: Tensor) -> Tensor:
        return pred * AB_SCALE


class RGBSpace(ColorSpace):
    """Predict gamma-encoded sRGB in [0, 1]; decoding keeps its chroma and the input L."""

    name = "rgb"
    channels = 3
    output_range = (0.0, 1.0)

    def encode(self, l: Tensor, ab: Tensor) -> Tensor:
        return lab_to_rgb(torch.cat([l, ab], dim=1))

    def decode_ab(self, l: Tensor, pred: Tensor) -> Tensor:
        return rgb_to_lab(pred.clamp(0.0, 1.0))[:, 1:]


class HLSSpace(ColorSpace):
    """Predict (hue / 2pi, lightness, saturation), each in [0, 1]."""

    name = "hls"
    channels = 3
    output_range = (0.0, 1.0)

    def encode(self, l: Tensor, ab: Tensor) -> Tensor:
        hls = kornia.color.rgb_to_hls(lab_to_rgb(torch.cat([l, ab], dim=1)))
        return torch.cat([hls[:, :1] / (2 * math.pi), hls[:, 1:]], dim=1)

    def decode_ab(self, l: Tensor, pred: Tensor) -> Tensor:
        pred = pred.clamp(0.0, 1.0)
        hls = torch.cat([pred[:, :1] * (2 * math.pi), pred[:, 1:]], dim=1)
        return rgb_to_lab(kornia.color.hls_to_rgb(hls).clamp(0.0, 1.0))[:, 1:]


COLORSPACES: dict[str, type[ColorSpace]] = {cls.name: cls for cls in (LabSpace, RGBSpace, HLSSpace)}


def get_colorspace(name: str) -> ColorSpace:
    """The colour space called `name` (`lab`, `rgb` or `hls`)."""
    try:
        return COLORSPACES[name]()
    except KeyError:
        raise ConfigError(f"colorspace.name={name!r} is unknown; expected one of {sorted(COLORSPACES)}") from None
