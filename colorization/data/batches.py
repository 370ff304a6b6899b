"""Batches travel as uint8 and become float Lab on the device, in one place.

Datasets yield uint8 only, so a batch crosses the DataLoader and the host-to-device copy at a
quarter of the float32 size, and every consumer (training, validation, `evaluate.py`) converts it
with the same function, `to_lab_batch`, after the transfer. Two uint8 encodings exist:

- ``lab_uint8`` (B, 3, H, W): the Kaggle / OpenCV 8-bit Lab encoding, ``L * 255/100``,
  ``a + 128``, ``b + 128`` (from Lab arrays);
- ``rgb_uint8`` (B, 3, H, W): sRGB 0..255 (from image folders), converted by
  `colorization.color.spaces.rgb_to_lab` (kornia, D65).

Everything downstream sees ``l`` (B, 1, H, W) in [0, 100] and ``ab`` (B, 2, H, W) in CIE units.
"""

from __future__ import annotations

import torch
from torch import Tensor

from colorization.color.spaces import rgb_to_lab

L_CV_TO_L = 100.0 / 255.0
"""OpenCV 8-bit L (0..255) -> CIE L* (0..100)."""
AB_CV_OFFSET = 128.0
"""OpenCV 8-bit a, b are stored shifted by +128."""
UINT8_MAX = 255.0

LAB_KEY, RGB_KEY = "lab_uint8", "rgb_uint8"


def lab_uint8_to_float(lab_uint8: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 3, H, W) uint8 Kaggle-encoded Lab -> float32 L (B, 1, H, W) in [0, 100] and ab (B, 2, H, W)."""
    lab = lab_uint8.float()
    return lab[:, :1] * L_CV_TO_L, lab[:, 1:] - AB_CV_OFFSET


def rgb_uint8_to_lab(rgb_uint8: Tensor) -> tuple[Tensor, Tensor]:
    """(B, 3, H, W) uint8 sRGB -> float32 L (B, 1, H, W) in [0, 100] and ab (B, 2, H, W)."""
    lab = rgb_to_lab(rgb_uint8.float() / UINT8_MAX)
    # white comes out a hair above 100 in float32; L is in [0, 100] everywhere else in the project
    return lab[:, :1].clamp(0.0, 100.0), lab[:, 1:]


def lab_to_uint8(lab: Tensor) -> Tensor:
    """(..., 3, H, W) float Lab -> the Kaggle uint8 encoding (rounded, clipped); inverse of `lab_uint8_to_float`."""
    scale = torch.tensor([1.0 / L_CV_TO_L, 1.0, 1.0], dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    offset = torch.tensor([0.0, AB_CV_OFFSET, AB_CV_OFFSET], dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    return (lab * scale + offset).round().clamp(0, UINT8_MAX).to(torch.uint8)


def to_lab_batch(batch: dict) -> dict:
    """A uint8 batch -> the same dict with float32 ``l`` and ``ab`` added (and the uint8 entry dropped).

    Batches that already hold ``l``/``ab`` pass unchanged, so calling it twice is harmless.
    """
    if LAB_KEY in batch:
        l, ab = lab_uint8_to_float(batch[LAB_KEY])
        drop = LAB_KEY
    elif RGB_KEY in batch:
        l, ab = rgb_uint8_to_lab(batch[RGB_KEY])
        drop = RGB_KEY
    else:
        return batch
    return {**{k: v for k, v in batch.items() if k != drop}, "l": l, "ab": ab}
