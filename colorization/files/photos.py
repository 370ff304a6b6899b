"""Photo files in and out: the one photo decoder, the one list of photo formats, and colour results written atomically.

Every reader of photos (``colorize``, the web page's uploads, ``data=folder``, its folder index and
``pack``) goes through one opening path: `open_image` (the header: format and size, before any pixel
is decoded) then `load_image` (the pixels); `decode` does both. It takes the formats of
`PHOTO_FORMATS` (files ending in `IMAGE_SUFFIXES`) and gives the first frame (of an animated GIF,
WebP or PNG, a multi-picture JPEG or a multi-page TIFF), upright (EXIF orientation applied) and in
one of the `CANONICAL_MODES`: palette becomes RGB (RGBA when it has a transparent colour), CMYK and
YCbCr become RGB, 1-bit becomes 8-bit gray, 16-bit gray stays 16-bit, float gray stays float.
Anything wrong (missing, not an image, truncated, over Pillow's decompression-bomb limit) is one
`DataError` line naming the file.

Two readers are built on it:

- `read_photo` / `photo_from_image` (``colorize`` and the web page): full-resolution L in [0, 100]
  computed from the file's full precision (CIE L* of the sRGB values,
  `colorization.color.spaces.rgb_to_lab`), alpha, EXIF and an RGB ICC profile kept for the output.
- `read_rgb` (training and evaluation data): 8-bit RGB for uint8 batches (`to_rgb8`: 16-bit and
  float gray rounded to the nearest of 256 levels, alpha composited on white), optionally decoding
  JPEGs at reduced size.

Writing (`save_image_atomic`) goes through `colorization.files.atomic`, so a run that is killed
never leaves a half-written image under the final name.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from colorization.color.spaces import lab_to_rgb_keep_l, rgb_to_lab
from colorization.errors import DataError
from colorization.files.atomic import atomic_write


class PhotoFormat(NamedTuple):
    """A file format photos come in."""

    name: str
    """As messages write it."""
    suffixes: tuple[str, ...]
    """File endings (lower case) of its files."""


PHOTO_FORMATS = {
    "JPEG": PhotoFormat("JPEG", (".jpg", ".jpeg")),
    # a JPEG holding more pictures after the photo (many cameras and phones write them); Pillow calls it MPO
    "MPO": PhotoFormat("JPEG", (".jpg", ".jpeg")),
    "PNG": PhotoFormat("PNG", (".png",)),
    "TIFF": PhotoFormat("TIFF", (".tif", ".tiff")),
    "WEBP": PhotoFormat("WebP", (".webp",)),
    "BMP": PhotoFormat("BMP", (".bmp",)),
    "GIF": PhotoFormat("GIF", (".gif",)),
}
"""Pillow's format name -> the format: the photos every reader takes (others are refused)."""
IMAGE_SUFFIXES = tuple(sorted({suffix for format in PHOTO_FORMATS.values() for suffix in format.suffixes}))
"""Files with these endings (compared in lower case) are photos; anything else in a folder is ignored."""
EXPECTED_FORMATS = ", ".join(sorted({format.name for format in PHOTO_FORMATS.values()}))
"""The formats as an error message lists them."""
DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
"""Formats Pillow can decode at 1/2, 1/4 or 1/8 of their size (`load_image`'s `draft_size`)."""
CANONICAL_MODES = ("L", "I", "F", "RGB", "LA", "RGBA")
"""Modes of a loaded photo: 8-bit, 16-bit (codes 0..65535 in mode I) and float (0..1) gray; RGB; gray or RGB + alpha."""
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
SIXTEEN_BIT_LEVELS = 65536
EIGHT_BIT_LEVELS = 256
STRIP_PIXELS = 1 << 20
"""Pixels per strip of the full-resolution work on a photo (its L, its colour output): whatever the photo's
size, the float temporaries of the colour conversions stay a few hundred MB."""
PNG_COMPRESS_LEVEL = 1
"""zlib level of written PNGs. On a 1024x768 colour photo level 1 encodes 3-4x faster than Pillow's default 6
for a file 12% larger (1.09 vs 0.97 MB); 2 and 3 are slower for the same size, 0 (stored) is twice as fast
again but writes twice the bytes. Encoding is most of what colorize adds to a fast network's time."""
READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
"""What Pillow raises for a truncated, corrupt, foreign or oversized file."""

OUTPUT_FORMATS = {"png": ("PNG", ".png"), "jpg": ("JPEG", ".jpg")}
"""``--format`` -> (Pillow format, suffix)."""
WRITTEN_AS_READ = ("JPEG", "PNG", "TIFF", "WEBP", "BMP")
"""Formats written back as they came with ``--format same``; others (GIF's 256 colours) become PNG."""
ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})


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


# ---- the one opening path ---------------------------------------------------------------------------


class UnreadablePhotoError(DataError):
    """A photo file the decoder cannot read: ``<name>: cannot read the image (<reason>)``.

    `reason` alone (which does not name the file) lets a caller word the message its own way.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)  # one argument, so that it pickles and re-raises across processes
        self.reason = message if reason is None else reason

    @classmethod
    def of(cls, name: str, reason: str) -> UnreadablePhotoError:
        return cls(f"{name}: cannot read the image ({reason})", reason)


def check_megapixels(name: str | Path, size: tuple[int, int], limit: float, taker: str) -> None:
    """Refuse (`DataError`) an image of `size` (width, height) over `limit` megapixels, naming `name`, its
    size and `taker`, whose ``--max-megapixels`` set the limit (``colorize``, ``this server``)."""
    width, height = size
    megapixels = width * height / 1e6
    if megapixels > limit:
        raise DataError(
            f"{name}: {width}x{height} is {megapixels:.1f} megapixels, more than the {limit:g} {taker} takes "
            "(--max-megapixels)"
        )


def open_image(source: str | Path | BinaryIO, name: str | None = None) -> Image.Image:
    """The photo file `source` opened: format, size and metadata read, no pixel decoded yet.

    `name` (default: the path) is how messages call the file. Raises `DataError` for a missing
    file and one that is not an image or not of `PHOTO_FORMATS`, `UnreadablePhotoError` for one that
    Pillow cannot open (e.g. over its decompression-bomb limit, ``Image.MAX_IMAGE_PIXELS``).
    Close it (``with``) after `load_image`.
    """
    name = str(source) if name is None else name
    try:
        image = Image.open(source)
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image; expected {EXPECTED_FORMATS}") from None
    except READ_ERRORS as error:
        raise UnreadablePhotoError.of(name, _one_line(error)) from None
    if image.format not in PHOTO_FORMATS:
        image.close()
        raise DataError(f"{name}: {image.format} images are not taken; expected {EXPECTED_FORMATS}")
    return image


def load_image(image: Image.Image, name: str, draft_size: int | None = None) -> Image.Image:
    """The first frame of an `open_image`, decoded, upright and in one of the `CANONICAL_MODES` (a new image).

    With `draft_size`, a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale whose shorter side
    is still at least `draft_size` pixels (much faster; other formats decode whole). Raises
    `UnreadablePhotoError` naming `name` for a truncated or corrupt file.
    """
    if draft_size is not None and image.format in DRAFT_FORMATS:
        scale = max(1, min(image.size) // draft_size)
        image.draft("RGB", (math.ceil(image.size[0] / scale), math.ceil(image.size[1] / scale)))
    try:
        image.load()  # the current frame, which a freshly opened file has at its first
    except READ_ERRORS as error:
        kind = PHOTO_FORMATS[image.format].name
        raise UnreadablePhotoError.of(name, f"the {kind} file is corrupt or truncated: {_one_line(error)}") from None
    try:
        return upright(image)
    except READ_ERRORS as error:  # a mode Pillow cannot convert
        raise UnreadablePhotoError.of(name, _one_line(error)) from None


def decode(path: str | Path, draft_size: int | None = None) -> Image.Image:
    """`open_image` and `load_image` of the file `path`: its first frame, upright, in a canonical mode."""
    with open_image(path) as image:
        return load_image(image, str(path), draft_size)


def upright(image: Image.Image) -> Image.Image:
    """A decoded image turned upright by its EXIF orientation, in one of the `CANONICAL_MODES`.

    Returns a new image whose ``info`` (EXIF without the orientation tag, ICC profile) is kept.
    """
    image = ImageOps.exif_transpose(image)  # always a new image; also drops the tag from its EXIF
    if image.mode in CANONICAL_MODES:
        return image
    if image.mode in SIXTEEN_BIT_MODES:
        return image.convert("I")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if image.mode == "La":
        return image.convert("LA")
    if image.mode == "1":
        return image.convert("L")
    return image.convert("RGB")  # CMYK, YCbCr, RGBX, ...


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of an opened image as it stands upright (EXIF orientations 5-8 swap the sides)."""
    turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # 0x0112: the orientation tag
    width, height = image.size
    return (height, width) if turned else (width, height)


# ---- colorize's reader: full-precision L ---------------------------------------------------------------


def read_photo(path: str | Path) -> Photo:
    """Decode an image file at full resolution; raises `DataError` naming the file if it is missing, truncated
    or not a photo."""
    with open_image(path) as image:
        photo = _photo(load_image(image, str(path)))
        photo.format = image.format
    return photo


def photo_from_image(image: Image.Image) -> Photo:
    """A `Photo` from a Pillow image of any mode (the Python API's argument, an upload), EXIF orientation applied."""
    return _photo(upright(image))


def _photo(image: Image.Image) -> Photo:
    """A `Photo` of an upright image in a canonical mode."""
    exif = image.getexif()
    icc = image.info.get("icc_profile")
    alpha = None
    if image.mode in ("LA", "RGBA"):
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8).copy()
        image = image.convert(image.mode[:-1])
    return Photo(
        l=_lightness(image),
        alpha=alpha,
        exif=exif.tobytes() if len(exif) else None,
        # an ICC profile describes the file's colour space: only an RGB one also fits the output
        icc=icc if icc and icc[16:20] == b"RGB " else None,
    )


def _lightness(image: Image.Image) -> Tensor:
    """(1, H, W) float32 L in [0, 100] of an image in mode L, I, F or RGB, from all the precision it has.

    Computed in strips of rows of about `STRIP_PIXELS`, so the float temporaries of a big photo take a
    strip's memory, not the photo's.
    """
    rgb = image.mode == "RGB"
    pixels, levels = (np.asarray(image), None) if rgb else _gray_codes(image)  # gray: through a table of L
    height, width = pixels.shape[:2]
    l = torch.empty(1, height, width, dtype=torch.float32)
    rows = max(1, STRIP_PIXELS // width)
    for top in range(0, height, rows):
        strip = pixels[top : top + rows]
        if rgb:
            values = torch.from_numpy(strip.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
            l[0, top : top + rows] = rgb_to_lab(values)[0, 0].clamp(0.0, 100.0)
        else:
            l[0, top : top + rows] = gray_lightness(levels)[torch.from_numpy(strip.astype(np.int64))]
    return l


def _gray_codes(image: Image.Image) -> tuple[np.ndarray, int]:
    """A gray image (mode L, I or F) as (H, W) integer codes and their number of levels (256 or 65536).

    16-bit codes outside 0..65535 (a 32-bit integer file) and floats outside [0, 1] are clipped.
    """
    if image.mode == "L":
        return np.asarray(image), EIGHT_BIT_LEVELS
    if image.mode == "I":
        return np.asarray(image).clip(0, SIXTEEN_BIT_LEVELS - 1), SIXTEEN_BIT_LEVELS
    gray = np.asarray(image, dtype=np.float32).clip(0.0, 1.0)
    return np.round(gray * (SIXTEEN_BIT_LEVELS - 1)).astype(np.int64), SIXTEEN_BIT_LEVELS


@functools.cache
def gray_lightness(levels: int) -> Tensor:
    """(levels,) L* of the gray sRGB codes 0..levels-1 (so that a gray photo's L costs one lookup per pixel)."""
    gray = torch.linspace(0.0, 1.0, levels, dtype=torch.float32)
    return rgb_to_lab(gray.expand(1, 3, 1, levels).contiguous())[0, 0, 0].clamp(0.0, 100.0)


# ---- the data's reader: 8-bit RGB ---------------------------------------------------------------------


def read_rgb(path: str | Path, draft_size: int | None = None) -> Image.Image:
    """A photo file as an upright 8-bit RGB Pillow image (`to_rgb8`), for uint8 training and evaluation batches.

    `draft_size`: decode JPEGs at reduced size (`load_image`). Raises `DataError` naming the file.
    """
    return to_rgb8(decode(path, draft_size))


def to_eight_bit(image: Image.Image) -> Image.Image:
    """A canonical image with 16-bit and float gray rounded to 8-bit gray; other modes as they are.

    The one place that decides it: 16-bit code c becomes round(c / 257), the nearest of the 256
    levels (c * 255 / 65535), so an 8-bit reader's L is within half a code of `read_photo`'s.
    """
    if image.mode not in ("I", "F"):
        return image
    codes, levels = _gray_codes(image)
    return Image.fromarray(np.round(codes * ((EIGHT_BIT_LEVELS - 1) / (levels - 1))).astype(np.uint8))


def to_rgb8(image: Image.Image) -> Image.Image:
    """A canonical image as 8-bit RGB: gray rounded by `to_eight_bit`, alpha composited on white (as viewers do)."""
    image = to_eight_bit(image)
    if image.mode in ("LA", "RGBA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


# ---- colour results ------------------------------------------------------------------------------------


def lab_to_rgb8(lab: Tensor) -> np.ndarray:
    """(1, 3, H, W) Lab -> (H, W, 3) uint8 sRGB keeping the given L (`lab_to_rgb_keep_l`), each value rounded."""
    rgb = lab_to_rgb_keep_l(lab.float())[0]
    return (rgb * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def lab_to_image(lab: Tensor, alpha: np.ndarray | None = None) -> Image.Image:
    """(1, 3, H, W) Lab -> 8-bit sRGB (or RGBA with `alpha`) Pillow image keeping the given L (`lab_to_rgb8`)."""
    pixels = lab_to_rgb8(lab)
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
        for format in WRITTEN_AS_READ:
            if suffix in PHOTO_FORMATS[format].suffixes:
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
    if format == "PNG":
        options["compress_level"] = PNG_COMPRESS_LEVEL
    return atomic_write(path, lambda temp: image.save(temp, format=format, **options))


def _one_line(error: BaseException) -> str:
    """An exception's message on one line (some of Pillow's span several)."""
    return " ".join(str(error).split()) or type(error).__name__
