"""Geometry and measures of decoded photos for the image-folder data: crop and resize, measure chroma.

Photos are decoded by `colorization.files.photos.read_rgb` (upright 8-bit RGB). The functions here
work on those Pillow images and return uint8; nothing here converts to float Lab (that happens on
the device, `colorization.data.batches`). Geometry follows the usual ImageNet pipelines: a
random-resized crop (Szegedy et al. 2015, as torchvision implements it) for training, "resize the
shorter side, then centre crop" or a plain resize for evaluation.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image

from colorization.color.spaces import rgb_to_lab

RESAMPLE = Image.Resampling.BILINEAR
"""Pillow's bilinear filter widens with the scale factor, so downscaling is antialiased."""
CHROMA_THUMBNAIL = 64
"""Longest side (pixels) at which an image's mean chroma is measured: enough for a mean, cheap to decode."""
RESIZED_CROP_TRIES = 10


def to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """RGB Pillow image -> (3, H, W) uint8 tensor."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def random_resized_box(
    width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float], rng: random.Random
) -> tuple[int, int, int, int]:
    """A random (left, top, right, bottom) box covering `scale` of the area with aspect ratio in `ratio`.

    As torchvision's RandomResizedCrop: up to 10 tries with log-uniform ratio, then the largest
    centred box with the ratio clipped to `ratio`.
    """
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(RESIZED_CROP_TRIES):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = rng.randint(0, width - w)
            top = rng.randint(0, height - h)
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def random_resized_crop(
    image: Image.Image, size: int, scale: tuple[float, float], ratio: tuple[float, float], rng: random.Random
) -> Image.Image:
    """A random box of the image (see `random_resized_box`) resized to size x size, flipped with probability 1/2."""
    box = random_resized_box(image.width, image.height, scale, ratio, rng)
    crop = image.resize((size, size), RESAMPLE, box=box)
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def resize_shorter(image: Image.Image, shorter: int) -> Image.Image:
    """Resize so that the shorter side is `shorter` pixels, keeping the aspect ratio (rounded)."""
    width, height = image.size
    if width <= height:
        size = (shorter, max(1, round(height * shorter / width)))
    else:
        size = (max(1, round(width * shorter / height)), shorter)
    return image if size == image.size else image.resize(size, RESAMPLE)


def centre_crop(image: Image.Image, size: int) -> Image.Image:
    """The central size x size square (the image's shorter side must be at least `size`)."""
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def resize_centre_crop(image: Image.Image, resize: int, size: int) -> Image.Image:
    """Shorter side to `resize`, then the central size x size square (`size` <= `resize`)."""
    return centre_crop(resize_shorter(image, resize), size)


def plain_resize(image: Image.Image, size: int) -> Image.Image:
    """Resize to size x size, ignoring the aspect ratio (the COCO-Stuff/ADE20K protocol)."""
    return image if image.size == (size, size) else image.resize((size, size), RESAMPLE)


def mean_chroma(image: Image.Image) -> float:
    """Mean CIE chroma sqrt(a*^2 + b*^2) of an RGB image over its pixels, measured on a small thumbnail.

    A gray photo stored as RGB has a chroma of about 0 (JPEG noise adds a few tenths); colour
    photos are typically above 10.
    """
    thumbnail = image.copy()
    thumbnail.thumbnail((CHROMA_THUMBNAIL, CHROMA_THUMBNAIL), RESAMPLE)
    rgb = to_uint8_tensor(thumbnail).unsqueeze(0).float() / 255.0
    ab = rgb_to_lab(rgb)[:, 1:]
    return float(ab.square().sum(dim=1).sqrt().mean())
