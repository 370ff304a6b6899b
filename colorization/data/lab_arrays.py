"""Lab images stored as uint8 numpy arrays in the Kaggle "Image Colorization" layout.

Layout under a root directory (OpenCV 8-bit Lab: ``L_cv = L * 255/100``, ``a_cv = a + 128``)::

    l/gray_scale.npy   uint8 (N, H, W)        all L channels, in order
    ab/ab/ab1.npy      uint8 (n1, H, W, 2)    a, b of images 0 .. n1-1
    ab/ab/ab2.npy      uint8 (n2, H, W, 2)    a, b of images n1 .. n1+n2-1
    ...                                       (n1 + n2 + ... == N)

The Kaggle release has N = 25,000 at 224x224 in files of 10k, 10k and 5k images (3.76 GB), so
arrays are memory-mapped and only the crop being read is ever touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from colorization.data.batches import LAB_KEY
from colorization.errors import ConfigError, DataError

L_FILE = Path("l") / "gray_scale.npy"
AB_DIR = Path("ab") / "ab"
_AB_NAME = re.compile(r"^ab(\d+)\.npy$")


def _open_npy(path: Path) -> np.ndarray:
    """Memory-map a .npy file (reads its header only)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a .npy array of the Kaggle layout)")
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise DataError(f"{path}: not a readable .npy array ({error})") from None


def find_ab_files(root: Path) -> list[Path]:
    """`ab1.npy`, `ab2.npy`, ... under `root/ab/ab`, numbered from 1 without gaps."""
    ab_dir = root / AB_DIR
    numbered = {}
    if ab_dir.is_dir():
        for path in ab_dir.iterdir():
            match = _AB_NAME.match(path.name)
            if match:
                numbered[int(match.group(1))] = path
    if not numbered:
        raise DataError(f"{ab_dir}: no ab1.npy, ab2.npy, ... files found")
    expected = list(range(1, len(numbered) + 1))
    if sorted(numbered) != expected:
        raise DataError(
            f"{ab_dir}: ab files must be numbered ab1..ab{len(numbered)} without gaps, "
            f"found {[numbered[k].name for k in sorted(numbered)]}"
        )
    return [numbered[k] for k in expected]


class LabArrays:
    """Random access to image i's uint8 L and ab planes across the ab files, validated on open.

    Arrays are opened lazily so that the object pickles cheaply into DataLoader workers, each of
    which then maps the files itself.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data directory not found")
        self.l_path = self.root / L_FILE
        self.ab_paths = find_ab_files(self.root)
        l_arr, ab_arrs = self._validate()
        self.image_size: tuple[int, int] = (int(l_arr.shape[1]), int(l_arr.shape[2]))
        self.ab_counts = [int(a.shape[0]) for a in ab_arrs]
        # ab file k holds images offsets[k] .. offsets[k+1]-1
        self.offsets = np.concatenate([[0], np.cumsum(self.ab_counts)]).astype(np.int64)
        self._l: np.ndarray | None = None
        self._ab: list[np.ndarray] | None = None

    def _validate(self) -> tuple[np.ndarray, list[np.ndarray]]:
        l_arr = _open_npy(self.l_path)
        if l_arr.dtype != np.uint8 or l_arr.ndim != 3:
            raise DataError(f"{self.l_path}: expected uint8 (N, H, W), got {l_arr.dtype} {tuple(l_arr.shape)}")
        height, width = l_arr.shape[1:]
        ab_arrs = []
        for path in self.ab_paths:
            ab = _open_npy(path)
            if ab.dtype != np.uint8 or ab.ndim != 4 or ab.shape[1:] != (height, width, 2):
                raise DataError(
                    f"{path}: expected uint8 (n, {height}, {width}, 2) to match {self.l_path}, "
                    f"got {ab.dtype} {tuple(ab.shape)}"
                )
            ab_arrs.append(ab)
        total = sum(a.shape[0] for a in ab_arrs)
        if total != l_arr.shape[0]:
            raise DataError(
                f"{self.root}: {self.l_path.name} holds {l_arr.shape[0]} images but the ab files "
                f"hold {total} ({' + '.join(str(a.shape[0]) for a in ab_arrs)}); expected equal counts"
            )
        if total == 0:
            raise DataError(f"{self.root}: the arrays hold no images; expected at least one in {self.l_path.name}")
        return l_arr, ab_arrs

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _arrays(self) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._l is None or self._ab is None:
            self._l = np.load(self.l_path, mmap_mode="r")
            self._ab = [np.load(p, mmap_mode="r") for p in self.ab_paths]
        return self._l, self._ab

    def locate(self, index: int) -> tuple[int, int]:
        """Image `index` -> (ab file number from 0, row inside that file)."""
        if not 0 <= index < len(self):
            raise IndexError(f"image index {index} out of range [0, {len(self)})")
        file = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return file, index - int(self.offsets[file])

    def read(self, index: int, top: int = 0, left: int = 0, size: tuple[int, int] | None = None):
        """uint8 L (h, w) and ab (h, w, 2) of one image, cropped before anything is copied."""
        height, width = size or self.image_size
        l_arr, ab_arrs = self._arrays()
        file, row = self.locate(index)
        rows, cols = slice(top, top + height), slice(left, left + width)
        return np.array(l_arr[index, rows, cols]), np.array(ab_arrs[file][row, rows, cols])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_l": None, "_ab": None}


class LabCropDataset(Dataset):
    """Crops of a subset of `LabArrays`: random crop + horizontal flip when training, centre crop otherwise.

    Items are dicts: ``lab_uint8`` (3, s, s) uint8 in the stored encoding (L * 255/100, a + 128,
    b + 128), ``index`` the image's position in the arrays. Float Lab is made on the model's device
    (`colorization.data.batches.to_lab_batch`).
    """

    def __init__(self, arrays: LabArrays, indices: np.ndarray, crop_size: int, train: bool) -> None:
        height, width = arrays.image_size
        if not 1 <= crop_size <= min(height, width):
            raise ConfigError(
                f"data.crop_size={crop_size} does not fit the {height}x{width} images in "
                f"{arrays.root}; expected 1..{min(height, width)}"
            )
        self.arrays, self.indices, self.crop_size, self.train = arrays, indices, crop_size, train

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, Tensor | int]:
        index = int(self.indices[item])
        height, width = self.arrays.image_size
        size = self.crop_size
        if self.train:
            top = int(torch.randint(0, height - size + 1, ()))
            left = int(torch.randint(0, width - size + 1, ()))
        else:
            top, left = (height - size) // 2, (width - size) // 2
        l_cv, ab_cv = self.arrays.read(index, top, left, (size, size))
        if self.train and bool(torch.rand(()) < 0.5):
            l_cv, ab_cv = l_cv[:, ::-1], ab_cv[:, ::-1]
        lab_cv = np.concatenate([l_cv[None], ab_cv.transpose(2, 0, 1)], axis=0)
        return {LAB_KEY: torch.from_numpy(np.ascontiguousarray(lab_cv)), "index": index}


@dataclass(frozen=True)
class Split:
    """Image indices of each stage."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(
    counts: list[int],
    test_start: int | None,
    val_fraction: float,
    limit: int | None,
    seed: int,
) -> Split:
    """The study's split: a training pool before `test_start`, the test set from it on.

    `test_start=None` starts the test set at the last ab file (image 20,000 on Kaggle, the study's
    choice). `limit` keeps the first `limit` images of the pool and of the test set. Validation is
    a seeded random `val_fraction` of the pool.
    """
    total = sum(counts)
    if test_start is None:
        test_start = total - counts[-1] if len(counts) > 1 else total
    if not 0 < test_start <= total:
        raise ConfigError(f"data.test_start={test_start} is out of range; expected 1..{total}")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction={val_fraction} is out of range; expected [0, 1)")
    if limit is not None and limit < 1:
        raise ConfigError(f"data.limit={limit} must be a positive number of images or null")
    pool = np.arange(test_start)
    test = np.arange(test_start, total)
    if limit is not None:
        pool, test = pool[:limit], test[:limit]
    n_val = int(round(val_fraction * len(pool)))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= len(pool):
        raise ConfigError(f"data.val_fraction={val_fraction} leaves no training images out of {len(pool)}")
    perm = np.random.default_rng(seed).permutation(pool)
    return Split(train=np.sort(perm[n_val:]), val=np.sort(perm[:n_val]), test=test)
