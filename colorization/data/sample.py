"""The built-in demo dataset: colour photos that ship with scikit-image, in the Kaggle layout.

`SamplePhotosDataModule.prepare_data` converts the photos once into ``l/gray_scale.npy`` and
``ab/ab/ab1.npy`` (training pool) + ``ab/ab/ab2.npy`` (test set), so the default run goes through
exactly the code that reads the Kaggle release. Test crops come from photos never used for
training. Everything is seeded: the same settings give byte-identical arrays.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from colorization.data.batches import AB_CV_OFFSET, L_CV_TO_L
from colorization.data.datamodule import LabArraysDataModule
from colorization.data.lab_arrays import AB_DIR, L_FILE
from colorization.errors import DataError
from colorization.files.atomic import atomic_directory, remove_partial_files
from colorization.files.builtin_photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo

MANIFEST = "sample.json"
MAX_ZOOM_OUT = 3
"""A crop's window is at most this many crop sizes wide (then resized to the crop size)."""


def random_crops(photo: np.ndarray, count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`count` uint8 (size, size, 3) crops of random square windows, `size` to 3 `size` wide.

    Each window is cut first and resized to `size` afterwards, so wide views are cheap.
    """
    from skimage.transform import resize

    short = min(photo.shape[:2])
    if short < size:
        raise DataError(f"photo of {photo.shape[:2]} pixels is smaller than the {size}-pixel crops")
    crops = np.empty((count, size, size, 3), np.uint8)
    for k in range(count):
        window = int(rng.integers(size, min(short, MAX_ZOOM_OUT * size) + 1))
        top = int(rng.integers(0, photo.shape[0] - window + 1))
        left = int(rng.integers(0, photo.shape[1] - window + 1))
        view = photo[top : top + window, left : left + window]
        if window != size:
            view = resize(view, (size, size), anti_aliasing=True, preserve_range=True)
        crops[k] = np.clip(np.round(view), 0, 255)
    return crops


def rgb_to_lab_cv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) sRGB -> OpenCV-style uint8 L (N, H, W) and ab (N, H, W, 2)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb)
    l_cv = np.clip(np.round(lab[..., 0] / L_CV_TO_L), 0, 255).astype(np.uint8)
    ab_cv = np.clip(np.round(lab[..., 1:] + AB_CV_OFFSET), 0, 255).astype(np.uint8)
    return l_cv, ab_cv


def write_sample_dataset(root: Path, image_size: int, train_crops: int, test_crops: int, seed: int) -> None:
    """Write the sample arrays to `root` atomically (`colorization.files.atomic.atomic_directory`); an
    up-to-date copy is left alone, one made with other settings is replaced."""
    settings = {
        "image_size": image_size,
        "train_crops_per_photo": train_crops,
        "test_crops_per_photo": test_crops,
        "seed": seed,
        "train_photos": list(TRAIN_PHOTOS),
        "test_photos": list(TEST_PHOTOS),
    }
    manifest = root / MANIFEST
    if _made_with(root, settings):
        return
    if root.exists() and not manifest.is_file():
        raise DataError(f"{root}: exists but holds no {MANIFEST}; refusing to overwrite it")
    rng = np.random.default_rng(seed)
    parts = []
    for photos, count in ((TRAIN_PHOTOS, train_crops), (TEST_PHOTOS, test_crops)):
        rgb = np.concatenate([random_crops(load_photo(p), count, image_size, rng) for p in photos])
        parts.append(rgb_to_lab_cv(rgb))
    remove_partial_files(root.parent)  # what a killed run left
    try:
        with atomic_directory(root) as tmp:
            (tmp / L_FILE).parent.mkdir(parents=True)
            (tmp / AB_DIR).mkdir(parents=True)
            np.save(tmp / L_FILE, np.concatenate([l for l, _ in parts]))
            for number, (_, ab) in enumerate(parts, start=1):
                np.save(tmp / AB_DIR / f"ab{number}.npy", ab)
            (tmp / MANIFEST).write_text(json.dumps(settings, indent=2))
            if root.exists() and not _made_with(root, settings):
                shutil.rmtree(root)  # made with other settings (and holding a manifest: ours)
    except OSError:
        # another process (e.g. a second DDP rank) finished the same dataset first
        if not _made_with(root, settings):
            raise


def _made_with(root: Path, settings: dict) -> bool:
    """Whether `root` holds a complete sample dataset made with `settings`."""
    manifest = root / MANIFEST
    return manifest.is_file() and json.loads(manifest.read_text()) == settings


class SamplePhotosDataModule(LabArraysDataModule):
    """`LabArraysDataModule` over the built-in photos, generated on first use under `root`."""

    def __init__(
        self,
        root: str,
        image_size: int = 224,
        train_crops_per_photo: int = 40,
        test_crops_per_photo: int = 24,
        photo_seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        self.image_size = image_size
        self.train_crops_per_photo = train_crops_per_photo
        self.test_crops_per_photo = test_crops_per_photo
        self.photo_seed = photo_seed

    def prepare_data(self) -> None:
        write_sample_dataset(
            self.root,
            self.image_size,
            self.train_crops_per_photo,
            self.test_crops_per_photo,
            self.photo_seed,
        )
