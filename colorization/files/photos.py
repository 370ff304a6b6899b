"""Photo files in and out: any common image -> full-resolution L (+ alpha); colour results written atomically.

Reading honours EXIF orientation and takes grayscale, RGB (a sepia or tinted scan gives its
luminance), RGBA and LA (alpha kept), palette, 16-bit grayscale and float images. L is CIE L* of
the sRGB values (`colorization.color.spaces.rgb_to_lab`), computed from the file's full precision.

Writing goes through `colorization.files.atomic`, so a run that is killed never leaves a
half-written image under the final name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from colorization.color.spaces import lab_to_rgb_keep_l, rgb_to_lab
from colorization.errors import DataError
from colorization.files.atomic import atomic_write

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"})
"""Files with these suffixes are photos; anything else in a folder is ignored."""
OUTPUT_FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg")}
"""``--format`` -> (Pillow format, suffix)."""
SAME_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
"""Formats written back as they came with ``--format same``; others (GIF's 256 colours) become PNG."""
SAME_ALIASES = {"JPEG": (".jpeg",), "TIFF": (".tiff",)}
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
SIXTEEN_BIT_LEVELS = 65536


@dataclass
class Photo:
    """A decoded photo: L (1, H, W) float32 in [0, 100] at full resolution, plus what the output keeps.

    `alpha` is (H, W) uint8 or None; `exif` (orientation already applied and reset) and `icc`
    (only an RGB profile, which fits the colour output) are raw bytes or None; `format` is
    Pillow's name for the file's format (None for an in-memory image).
    """

    l: Tensor
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    icc: bytes | None = None
    format: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return tuple(self.l.shape[-2:])


def read_photo(path: str | Path) -> Photo:
    """Decode an image file; raises `DataError` naming the file if it is missing, truncated or not an image."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            photo = photo_from_image(image)
            photo.format = image.format
            return photo
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise DataError(f"{path}: cannot read the image ({error})") from None


def photo_from_image(image: Image.Image) -> Photo:
    """A `Photo` from a Pillow image of any mode, EXIF orientation applied."""
    exif = image.getexif()
    image = ImageOps.exif_transpose(image)  # also drops the orientation tag from its copy of the EXIF
    exif = image.getexif() if len(exif) else None
    icc = image.info.get("icc_profile")
    values, alpha = _values(image)
    if isinstance(values, tuple):  # gray codes: L through a table of every code's lightness
        codes, levels = values
        l = gray_lightness(levels)[torch.from_numpy(codes.astype(np.int64))][None]
    else:
        rgb = torch.from_numpy(values).permute(2, 0, 1)[None]
        l = rgb_to_lab(rgb)[0, :1].clamp(0.0, 100.0).contiguous()
    return Photo(
        l=l,
        alpha=alpha,
        exif=exif.tobytes() if exif else None,
        # an ICC profile describes the file's colour space: only an RGB one also fits the output
        icc=icc if icc and icc[16:20] == b"RGB " else None,
    )


@functools.cache
def gray_lightness(levels: int) -> Tensor:
    """(levels,) L* of the gray sRGB codes 0..levels-1 (so that a gray photo's L costs one lookup per pixel)."""
    gray = torch.linspace(0.0, 1.0, levels, dtype=torch.float32)
    return rgb_to_lab(gray.expand(1, 3, 1, levels).contiguous())[0, 0, 0].clamp(0.0, 100.0)


def _values(image: Image.Image) -> tuple[np.ndarray | tuple[np.ndarray, int], np.ndarray | None]:
    """The pixel values and (H, W) uint8 alpha or None.

    Values: (H, W, 3) float32 RGB in [0, 1], or gray as ((H, W) integer codes, number of levels).
    """
    alpha = None
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8).copy()
        image = image.convert("RGB" if image.mode in ("RGBA", "PA", "RGBa") else "L")
    if image.mode in SIXTEEN_BIT_MODES:
        return (np.asarray(image).clip(0, SIXTEEN_BIT_LEVELS - 1), SIXTEEN_BIT_LEVELS), alpha
    if image.mode == "F":
        gray = np.asarray(image, dtype=np.float32).clip(0, 1)
        return (np.round(gray * (SIXTEEN_BIT_LEVELS - 1)), SIXTEEN_BIT_LEVELS), alpha
    if image.mode in ("1", "L"):
        return (np.asarray(image.convert("L")), 256), alpha
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0, alpha


def lab_to_image(lab: Tensor, alpha: np.ndarray | None = None) -> Image.Image:
    """(1, 3, H, W) Lab -> 8-bit sRGB (or RGBA with `alpha`) Pillow image keeping the given L (`lab_to_rgb_keep_l`)."""
    rgb = lab_to_rgb_keep_l(lab.float())[0]
    pixels = (rgb * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if alpha is not None:
        pixels = np.concatenate([pixels, alpha[..., None]], axis=2)
    return Image.fromarray(pixels, "RGBA" if alpha is not None else "RGB")


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    """Two images of one size next to each other (RGB)."""
    sheet = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    sheet.paste(left.convert("RGB"), (0, 0))
    sheet.paste(right.convert("RGB"), (left.width, 0))
    return sheet


def output_format(choice: str, input_suffix: str) -> tuple[str, str]:
    """(Pillow format, suffix) for ``--format`` `choice` (png, jpg or same) and the input file's suffix."""
    if choice == "same":
        suffix = input_suffix.lower()
        for format, same_suffix in SAME_FORMATS.items():
            if suffix in (same_suffix, *SAME_ALIASES.get(format, ())):
                return format, suffix
        return OUTPUT_FORMATS["png"]
    return OUTPUT_FORMATS[choice]


def save_image_atomic(
    image: Image.Image,
    path: Path,
    format: str,
    quality: int = 95,
    exif: bytes | None = None,
    icc: bytes | None = None,
) -> Path:
    """Write `image` to `path` atomically (`colorization.files.atomic.atomic_write`); returns `path`.

    Alpha is dropped where the format cannot hold it; EXIF and ICC are kept where it can.
    """
    if image.mode == "RGBA" and format not in ALPHA_FORMATS:
        image = image.convert("RGB")
    options: dict = {}
    if format in ("JPEG", "WEBP"):
        options["quality"] = quality
    if exif and format in EXIF_FORMATS:
        options["exif"] = exif
    if icc and format in ICC_FORMATS:
        options["icc_profile"] = icc
    return atomic_write(path, lambda temp: image.save(temp, format=format, **options))
