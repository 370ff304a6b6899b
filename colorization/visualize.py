"""Pictures of results: sample sheets of gray input | prediction | ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from colorization.atomic import atomic_write
from colorization.colorspaces import lab_to_rgb


def to_uint8_rgb(lab: Tensor) -> np.ndarray:
    """(B, 3, H, W) Lab -> (B, H, W, 3) uint8 sRGB."""
    rgb = lab_to_rgb(lab.detach().float().cpu())
    return (rgb.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)


def gray_lab(l: Tensor) -> Tensor:
    """(B, 1, H, W) L -> (B, 3, H, W) Lab with a = b = 0 (what a black-and-white photo shows)."""
    return torch.cat([l, torch.zeros_like(l).expand(-1, 2, -1, -1)], dim=1)


def sample_sheet(columns: list[Tensor]) -> np.ndarray:
    """Tile Lab batches side by side: row i shows image i of every column; (B*H, K*W, 3) uint8."""
    tiles = [to_uint8_rgb(column) for column in columns]
    rows = [np.concatenate([tile[i] for tile in tiles], axis=1) for i in range(len(tiles[0]))]
    return np.concatenate(rows, axis=0)


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 image as PNG (atomically), creating parent directories."""
    return atomic_write(path, lambda temp: Image.fromarray(image).save(temp, format="PNG"))
