"""Data the tests write: Kaggle-layout arrays whose values say which image they are, folders of photo files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_kaggle_layout(root: Path, counts: list[int], size: int = 24, *, rng_seed: int = 0) -> Path:
    """Kaggle-layout arrays whose image i has L_cv = i everywhere and a_cv = i, b_cv = 255 - i,
    plus a little noise on the rest of the picture so crops differ. Pairing is checkable from values."""
    rng = np.random.default_rng(rng_seed)
    total = sum(counts)
    l = np.empty((total, size, size), np.uint8)
    ab = np.empty((total, size, size, 2), np.uint8)
    for i in range(total):
        l[i] = i % 256
        ab[i, ..., 0] = i % 256
        ab[i, ..., 1] = 255 - i % 256
    l[:, 1:, 1:] = np.maximum(l[:, 1:, 1:], rng.integers(0, 3, l[:, 1:, 1:].shape, dtype=np.uint8))
    (root / "l").mkdir(parents=True, exist_ok=True)
    (root / "ab" / "ab").mkdir(parents=True, exist_ok=True)
    np.save(root / "l" / "gray_scale.npy", l)
    start = 0
    for k, count in enumerate(counts, start=1):
        np.save(root / "ab" / "ab" / f"ab{k}.npy", ab[start : start + count])
        start += count
    return root


def write_photo_folder(root: Path, count: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """A folder of small photo files as users have them: JPEGs and PNGs in nested folders, cut from
    scikit-image's colour photos (width x height `size`), plus one gray photo saved as RGB
    (``gray.jpg``) and one corrupt file (``broken.jpg``)."""
    from colorization.files.builtin_photos import load_photo

    rng = np.random.default_rng(0)
    photos = [load_photo(name) for name in ("astronaut", "coffee", "motorcycle_left", "immunohistochemistry")]
    width, height = size
    for k in range(count):
        photo = photos[k % len(photos)]
        top = int(rng.integers(0, photo.shape[0] - 4 * height))
        left = int(rng.integers(0, photo.shape[1] - 4 * width))
        window = Image.fromarray(photo[top : top + 4 * height, left : left + 4 * width]).resize(size)
        folder = root / f"part{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        if k % 2:
            window.save(folder / f"img{k:03d}.png")
        else:
            window.save(folder / f"img{k:03d}.jpg", quality=95)
    gray = Image.fromarray(photos[0][:height, :width]).convert("L").convert("RGB")
    gray.save(root / "gray.jpg", quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


def photo(height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8: a built-in colour photo resized, so the outputs have real structure."""
    from skimage import data as skdata

    return np.asarray(Image.fromarray(skdata.astronaut()).resize((width, height), Image.BICUBIC))
