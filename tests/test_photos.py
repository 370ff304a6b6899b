"""The one photo decoder: colorize, the web page's uploads and the data's reader see every kind of file alike."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.color.spaces import rgb_to_lab
from colorization.colorize.photos import find_photos
from colorization.data.image_index import scan_folder
from colorization.demo.uploads import open_upload
from colorization.errors import DataError
from colorization.files.photos import IMAGE_SUFFIXES, gray_lightness, photo_from_image, read_photo, read_rgb

ORIENTATION = 0x0112
ROTATE_90_CW = 6
"""EXIF orientation 6: the stored image must be turned 90 degrees clockwise for display."""
HALF_CODE_L = float(gray_lightness(2 * 255 + 1).diff().max()) + 1e-3
"""The most L changes across half an 8-bit gray code: how far an 8-bit reader's L may be from the full precision."""
FIRST_FRAME, SECOND_FRAME = (255, 0, 0), (0, 0, 255)


def colour_pixels(height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8 with smooth colour gradients, and a white block at the top left to tell orientation."""
    rows, cols = np.mgrid[:height, :width]
    pixels = np.stack([rows * 255 // max(1, height - 1), cols * 255 // max(1, width - 1), (rows + cols) % 256], axis=2)
    pixels[:4, :4] = 255
    return pixels.astype(np.uint8)


def exif_rotated_jpeg(path: Path) -> tuple[int, int]:
    image = Image.fromarray(colour_pixels(20, 40))
    exif = image.getexif()
    exif[ORIENTATION] = ROTATE_90_CW
    image.save(path, exif=exif, quality=95)
    return 20, 40


def gray_16_bit_png(path: Path) -> tuple[int, int]:
    # every 16-bit code once, so the rounding to 8 bits is checked where it errs most (dark codes)
    Image.fromarray(np.arange(65536, dtype=np.uint16).reshape(256, 256)).save(path)
    return 256, 256


def palette_png_with_transparency(path: Path) -> tuple[int, int]:
    image = Image.fromarray(colour_pixels(24, 32)).quantize(colors=16)
    image.save(path, transparency=0)
    return 32, 24


def rgba_png(path: Path) -> tuple[int, int]:
    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    Image.fromarray(np.dstack([colour_pixels(20, 30), alpha])).save(path)
    return 30, 20


def la_png(path: Path) -> tuple[int, int]:
    gray = colour_pixels(20, 30)[..., 0]
    Image.fromarray(np.dstack([gray, 255 - gray])).save(path)
    return 30, 20


def cmyk_jpeg(path: Path) -> tuple[int, int]:
    Image.fromarray(colour_pixels(20, 30)).convert("CMYK").save(path, quality=95)
    return 30, 20


def animated_gif(path: Path) -> tuple[int, int]:
    first, second = Image.new("RGB", (30, 20), FIRST_FRAME), Image.new("RGB", (30, 20), SECOND_FRAME)
    first.save(path, save_all=True, append_images=[second])
    return 30, 20


def multi_picture_jpeg(path: Path) -> tuple[int, int]:
    # a JPEG with a second picture appended, as many cameras write (Pillow's format: MPO)
    first, second = Image.new("RGB", (30, 20), FIRST_FRAME), Image.new("RGB", (30, 20), SECOND_FRAME)
    first.save(path, format="MPO", save_all=True, append_images=[second], quality=95)
    return 30, 20


def float_tiff(path: Path) -> tuple[int, int]:
    Image.fromarray(np.linspace(-0.1, 1.1, 40 * 30, dtype=np.float32).reshape(30, 40)).save(path)
    return 40, 30


def one_bit_bmp(path: Path) -> tuple[int, int]:
    Image.fromarray(colour_pixels(20, 30)[..., 0] > 128).save(path)
    return 30, 20


KINDS: dict[str, tuple[str, Callable[[Path], tuple[int, int]]]] = {
    "EXIF-rotated JPEG": (".jpg", exif_rotated_jpeg),
    "16-bit gray PNG": (".png", gray_16_bit_png),
    "palette PNG with a transparent colour": (".png", palette_png_with_transparency),
    "RGBA PNG": (".png", rgba_png),
    "LA PNG": (".png", la_png),
    "CMYK JPEG": (".jpeg", cmyk_jpeg),
    "animated GIF": (".gif", animated_gif),
    "multi-picture JPEG": (".jpg", multi_picture_jpeg),
    "float TIFF": (".tif", float_tiff),
    "1-bit BMP": (".bmp", one_bit_bmp),
}


def write_kind(kind: str, folder: Path) -> tuple[Path, tuple[int, int]]:
    """The file of `kind` in `folder` and its upright (width, height)."""
    suffix, write = KINDS[kind]
    path = folder / f"{kind.replace(' ', '_')}{suffix}"
    return path, write(path)


def data_l(path: Path) -> torch.Tensor:
    """(H, W) L of the data reader's 8-bit RGB."""
    rgb = torch.from_numpy(np.asarray(read_rgb(path), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return rgb_to_lab(rgb)[0, 0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_colorize_the_web_page_and_the_data_read_every_kind_of_file_alike(kind: str, tmp_path: Path):
    path, (width, height) = write_kind(kind, tmp_path)
    photo = read_photo(path)
    upload = photo_from_image(open_upload(path.read_bytes(), path.name))
    rgb = read_rgb(path)
    assert photo.size == (height, width) and upload.size == (height, width) and rgb.size == (width, height)
    torch.testing.assert_close(upload.l, photo.l, rtol=0, atol=0)  # the same decoder, bit for bit
    assert (upload.alpha is None) == (photo.alpha is None)

    # the data's L is the full precision's within half an 8-bit code, where nothing shows through
    l_data, l_photo = data_l(path), photo.l[0]
    opaque = torch.ones_like(l_photo, dtype=torch.bool) if photo.alpha is None else torch.from_numpy(photo.alpha == 255)
    assert opaque.any()
    assert (l_data - l_photo)[opaque].abs().max() <= HALF_CODE_L, kind
    if photo.alpha is not None and (photo.alpha == 0).any():  # the data composites transparency on white
        assert (l_data[torch.from_numpy(photo.alpha == 0)] - 100).abs().max() < 1e-3


@pytest.mark.parametrize("kind", ["animated GIF", "multi-picture JPEG"])
def test_the_first_frame_is_the_photo(kind: str, tmp_path: Path):
    path, _ = write_kind(kind, tmp_path)
    expected = rgb_to_lab(torch.tensor(FIRST_FRAME, dtype=torch.float32).view(1, 3, 1, 1) / 255)[0, 0, 0, 0]
    assert (read_photo(path).l - expected).abs().max() < 1.5  # JPEG's rounding; the second frame is 20 L away
    assert (np.abs(np.asarray(read_rgb(path), dtype=int) - FIRST_FRAME) <= 3).all()


def test_an_exif_rotated_photo_is_upright_for_every_reader(tmp_path: Path):
    path, _ = write_kind("EXIF-rotated JPEG", tmp_path)
    # stored landscape with a white block at the top left; turned clockwise it is at the top right
    rgb = np.asarray(read_rgb(path), dtype=int)
    assert rgb[:3, -3:].min() > 240 and rgb[:3, :3].min() < 100
    assert read_photo(path).l[0, :3, -3:].min() > 95


def test_colorize_and_the_data_find_the_same_photos_in_a_folder(tmp_path: Path):
    for kind in KINDS:
        write_kind(kind, tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "upper.GIF", format="GIF")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "scan.psd").write_bytes(b"8BPS")
    found_by_colorize = sorted(relative.as_posix() for _, relative in find_photos([tmp_path]))
    assert found_by_colorize == scan_folder(tmp_path)
    assert len(found_by_colorize) == len(KINDS) + 1
    assert {Path(name).suffix.lower() for name in found_by_colorize} <= set(IMAGE_SUFFIXES)


def png_bytes(size: tuple[int, int] = (100, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(colour_pixels(size[1], size[0])).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_FILES: dict[str, tuple[Callable[[], bytes], str]] = {
    "truncated": (lambda: png_bytes()[:300], r"cannot read the image \(the PNG file is corrupt or truncated: .+\)"),
    "decompression bomb": (png_bytes, r"cannot read the image \(Image size \(10000 pixels\) exceeds limit .*\)"),
    "not an image": (lambda: b"just text\n", r"not an image; expected BMP, GIF, JPEG, PNG, TIFF, WebP"),
    "another format": (lambda: _saved(Image.new("RGB", (16, 16)), "ICO"), r"ICO images are not taken; expected BMP.*"),
}


def _saved(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


@pytest.mark.parametrize("reader", [read_photo, read_rgb], ids=["colorize", "data"])
@pytest.mark.parametrize("bad", list(BAD_FILES))
def test_a_bad_file_is_one_data_error_line_naming_it(bad: str, reader, tmp_path: Path, monkeypatch):
    content, message = BAD_FILES[bad]
    path = tmp_path / "photo.png"
    path.write_bytes(content())
    if bad == "decompression bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # Pillow refuses twice as many pixels (100 x 100 > 4000)
    with pytest.raises(DataError) as error:
        reader(path)
    text = str(error.value)
    assert "\n" not in text and re.fullmatch(f"{re.escape(str(path))}: {message}", text), text
