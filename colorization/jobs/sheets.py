"""Pictures of results: sheets of Lab images side by side, each column named in a strip above it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from colorization.color.spaces import lab_to_rgb
from colorization.files.atomic import atomic_write
from colorization.files.photos import PHOTO_FORMATS


def to_uint8_rgb(lab: Tensor) -> np.ndarray:
    """(B, 3, H, W) Lab -> (B, H, W, 3) uint8 sRGB."""
    rgb = lab_to_rgb(lab.detach().float().cpu())
    return (rgb.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)


def sample_sheet(columns: list[Tensor]) -> np.ndarray:
    """Tile Lab batches side by side: row i shows image i of every column; (B*H, K*W, 3) uint8."""
    tiles = [to_uint8_rgb(column) for column in columns]
    rows = [np.concatenate([tile[i] for tile in tiles], axis=1) for i in range(len(tiles[0]))]
    return np.concatenate(rows, axis=0)


HEADER_HEIGHT = 14
"""Pixels of the name strip above each column of a labelled sheet."""


def labelled_sheet(columns: list[Tensor], names: list[str]) -> np.ndarray:
    """`sample_sheet` of the columns with each column's name written above it; (14 + B*H, K*W, 3) uint8.

    A name wider than its column is shortened to fit (the full names are wherever the columns are
    listed: the caption, the results table).
    """
    sheet = sample_sheet(columns)
    width = columns[0].shape[-1]
    header = Image.new("RGB", (sheet.shape[1], HEADER_HEIGHT), "white")
    draw = ImageDraw.Draw(header)
    for k, name in enumerate(names):
        while len(name) > 1 and draw.textlength(name) > width - 4:
            name = name[:-1]
        draw.text((k * width + 2, 1), name, fill="black")
    return np.concatenate([np.asarray(header), sheet], axis=0)


JPEG_QUALITY = 85
"""Quality of JPEG sheets: photos look the same as in PNG at a fraction of the size."""


def save_image(image: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 image atomically, creating parent directories; the suffix picks the
    format (``.png`` lossless, ``.jpg``/``.jpeg`` at `JPEG_QUALITY`)."""
    path = Path(path)
    jpeg = path.suffix.lower() in PHOTO_FORMATS["JPEG"].suffixes
    options = {"format": "JPEG", "quality": JPEG_QUALITY} if jpeg else {"format": "PNG"}
    return atomic_write(path, lambda temp: Image.fromarray(image).save(temp, **options))
