"""`ImageFolderDataModule`: train and evaluate on folders of photos (JPEG, PNG, WebP, BMP, TIFF, GIF).

Where the images come from (``data=folder``):

- ``root=DIR``: every image below DIR, split by a seeded permutation into test
  (`test_fraction`), validation (`val_fraction`) and training (the rest);
- or ``train_dir`` / ``val_dir`` / ``test_dir``: one folder per split (any may be left out);
- or ``protocol=NAME`` with ``root=DIR``: a published evaluation protocol
  (`colorization.data.protocols`): its images of DIR are the test split, at its size.

Each folder's file list is built once and cached (`colorization.data.image_index`). Images are
decoded in the DataLoader workers (`colorization.files.photos.read_rgb`: EXIF orientation, 8-bit
RGB). Training takes a random-resized crop + horizontal flip at `crop_size`; evaluation resizes
the shorter side to `eval_resize` and takes the centre `eval_crop_size` square (or what the
protocol says). Items are uint8 only: ``rgb_uint8`` (3, s, s) sRGB; the model converts batches to
Lab on its device (`colorization.data.batches.to_lab_batch`), so every family and colour space
trains unchanged.

Training excludes gray-looking photos (mean chroma below `min_chroma`; Zhang et al. 2016 removed
the grayscale ImageNet images the same way) and reports how many, once. Unreadable files are
skipped with one warning each; a folder without a readable image stops with one error line.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, default_collate

from colorization.data.batches import RGB_KEY
from colorization.data.datamodule import SPLITS, SplitsDataModule
from colorization.data.image_index import ImageRecord, load_index, readable_records
from colorization.data.images import plain_resize, random_resized_crop, resize_centre_crop, to_uint8_tensor
from colorization.data.protocols import RESIZE_CENTRE_CROP, Protocol, get_protocol
from colorization.errors import ConfigError, DataError, check_choice
from colorization.files.photos import read_rgb

log = logging.getLogger(__name__)

RANDOM_RESIZED_CROP = "random_resized_crop"


@dataclass(frozen=True)
class Geometry:
    """How a decoded photo becomes a size x size crop (picklable, so it travels into workers)."""

    mode: str
    """`RANDOM_RESIZED_CROP` (training), `RESIZE_CENTRE_CROP` or `RESIZE` (evaluation)."""
    size: int
    resize: int | None = None
    """Shorter side before the centre crop (`RESIZE_CENTRE_CROP`)."""
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __call__(self, image, rng: random.Random):
        if self.mode == RANDOM_RESIZED_CROP:
            return random_resized_crop(image, self.size, self.scale, self.ratio, rng)
        if self.mode == RESIZE_CENTRE_CROP:
            return resize_centre_crop(image, self.resize or self.size, self.size)
        return plain_resize(image, self.size)


class ImageFolderDataset(Dataset):
    """Photos of one split: item k is ``{"rgb_uint8": (3, s, s) uint8, "index": k}``, or None if unreadable."""

    def __init__(self, folder: Path, records: Sequence[ImageRecord], geometry: Geometry) -> None:
        self.folder, self.records, self.geometry = folder, list(records), geometry
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return len(self.records)

    @property
    def crop_size(self) -> int:
        return self.geometry.size

    def path(self, item: int) -> Path:
        return self.folder / self.records[item].path

    def __getitem__(self, item: int) -> dict[str, Tensor | int] | None:
        path = self.path(item)
        try:
            image = read_rgb(path)
        except DataError as error:
            # the file changed since it was indexed; never stop an epoch for one photo
            if str(path) not in self._warned:
                self._warned.add(str(path))
                log.warning("skipping a photo that is no longer a readable image: %s", error)
            return None
        # seeded through torch's generator, which Lightning seeds in every worker
        rng = random.Random(int(torch.randint(0, 2**62, ())))
        return {RGB_KEY: to_uint8_tensor(self.geometry(image, rng)), "index": item}


def collate_readable(items: list[dict | None]) -> dict[str, Tensor]:
    """`default_collate` of the items that could be read (a batch of only unreadable files is an error)."""
    kept = [item for item in items if item is not None]
    if not kept:
        raise DataError(
            f"none of the {len(items)} images of a batch could be read (see the warnings above): the folder changed "
            "after this run listed it; start again (each start checks the folder), or with data.rescan=true to "
            "read every file anew"
        )
    return default_collate(kept)


def seeded_split(records: Sequence[ImageRecord], val_fraction: float, test_fraction: float, seed: int):
    """(train, val, test) records: a seeded permutation cut into test, validation and the rest, each sorted by path."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{key}={value} is out of range; expected [0, 1)")
    n = len(records)
    n_test, n_val = (max(1, round(f * n)) if f > 0 else 0 for f in (test_fraction, val_fraction))
    if n_test + n_val >= n:
        raise ConfigError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} leave no training images "
            f"out of {n}"
        )
    order = np.random.default_rng(seed).permutation(n)
    parts = (order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test])
    return tuple([records[i] for i in sorted(part)] for part in parts)


class ImageFolderDataModule(SplitsDataModule):
    """Train/val/test loaders over folders of photos; batches hold ``rgb_uint8`` (B, 3, s, s) and ``index``.

    See the module docstring for the three ways to name the images. `batch_size` is per device.
    """

    collate_fn = staticmethod(collate_readable)  # unreadable photos are dropped from their batch

    def __init__(
        self,
        root: str | None = None,
        train_dir: str | None = None,
        val_dir: str | None = None,
        test_dir: str | None = None,
        protocol: str | None = None,
        crop_size: int = 224,
        eval_crop_size: int | None = None,
        eval_resize: int | None = None,
        crop_scale: Sequence[float] = (0.25, 1.0),
        crop_ratio: Sequence[float] = (3 / 4, 4 / 3),
        min_chroma: float = 2.0,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        limit: int | None = None,
        seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        index_dir: str | None = None,
        rescan: bool = False,
    ) -> None:
        super().__init__()
        unset = (None, "", "???")
        dirs = {split: d for split, d in zip(SPLITS, (train_dir, val_dir, test_dir), strict=True) if d not in unset}
        if root in unset and not dirs:
            raise ConfigError("data.root is not set; expected a folder of images (or data.train_dir/val_dir/test_dir)")
        if root not in unset and dirs:
            raise ConfigError(
                f"data.root and data.{'/'.join(f'{s}_dir' for s in dirs)} are both set; "
                "give either one folder to split or one folder per split"
            )
        self.protocol: Protocol | None = get_protocol(protocol) if protocol not in unset else None
        if self.protocol is not None and root in unset:
            raise ConfigError(f"data.protocol={protocol!r} takes its images from data.root, which is not set")
        for key, value in (("batch_size", batch_size), ("crop_size", crop_size)):
            if int(value) < 1:
                raise ConfigError(f"data.{key}={value} must be a positive integer")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers={num_workers} must be >= 0")
        if min_chroma < 0:
            raise ConfigError(f"data.min_chroma={min_chroma} must be >= 0 (0 keeps every image)")
        scale, ratio = tuple(float(s) for s in crop_scale), tuple(float(r) for r in crop_ratio)
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"data.crop_scale={list(crop_scale)} must be [low, high] with 0 < low <= high <= 1")
        if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"data.crop_ratio={list(crop_ratio)} must be [low, high] with 0 < low <= high")
        if limit is not None and limit < 1:
            raise ConfigError(f"data.limit={limit} must be a positive number of images or null")
        self.root = Path(root) if root not in unset else None
        self.dirs = {split: Path(d) for split, d in dirs.items()}
        self.crop_size = int(crop_size)
        if self.protocol is not None:
            self.eval_crop_size, self.eval_resize = self.protocol.size, self.protocol.size
            self.eval_mode = self.protocol.geometry
        else:
            self.eval_crop_size = int(eval_crop_size or crop_size)
            self.eval_resize = int(eval_resize or self.eval_crop_size)
            self.eval_mode = RESIZE_CENTRE_CROP
            if self.eval_resize < self.eval_crop_size:
                raise ConfigError(
                    f"data.eval_resize={eval_resize} is smaller than data.eval_crop_size={self.eval_crop_size}; "
                    "the centre crop must fit in the resized image"
                )
        self.crop_scale, self.crop_ratio = scale, ratio
        self.min_chroma = float(min_chroma)
        self.val_fraction, self.test_fraction, self.limit, self.seed = val_fraction, test_fraction, limit, seed
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.index_dir, self.rescan = index_dir, rescan
        self.datasets: dict[str, ImageFolderDataset] | None = None
        self._indexes: dict[Path, list[ImageRecord]] = {}

    @property
    def description(self) -> str:
        """Where the images come from, for tables and logs."""
        if self.root is not None:
            return str(self.root)
        return ", ".join(f"{split}: {path}" for split, path in self.dirs.items())

    def prepare_data(self) -> None:
        """Bring each folder's cached file list up to date (Lightning runs this on one process per node)."""
        for folder in [self.root] if self.root is not None else self.dirs.values():
            self._index(folder, self.rescan)

    def _index(self, folder: Path, rescan: bool = False) -> list[ImageRecord]:
        """The file list of `folder`, listed once per run: Lightning and the jobs call `prepare_data` and
        `setup` several times, and a folder of a million files takes a while to list even from its cache."""
        if folder not in self._indexes:
            self._indexes[folder] = load_index(folder, self.index_dir, self.num_workers, rescan)
        return self._indexes[folder]

    def _records(self, folder: Path) -> list[ImageRecord]:
        # on the process that ran prepare_data, its list; on the others, the one it cached
        return readable_records(folder, self._index(folder))

    def _split_records(self) -> dict[str, tuple[Path, list[ImageRecord]]]:
        if self.protocol is not None:
            records = self.protocol.select(self._records(self.root), str(self.root))
            return {"train": (self.root, []), "val": (self.root, []), "test": (self.root, records)}
        if self.root is not None:
            parts = seeded_split(self._records(self.root), self.val_fraction, self.test_fraction, self.seed)
            return {split: (self.root, part) for split, part in zip(SPLITS, parts, strict=True)}
        return {
            split: (self.dirs[split], self._records(self.dirs[split])) if split in self.dirs else (Path("."), [])
            for split in SPLITS
        }

    def _exclude_gray(self, records: list[ImageRecord], folder: Path) -> list[ImageRecord]:
        """Training records whose mean chroma reaches `min_chroma`; the count left out is logged once."""
        kept = [r for r in records if r.chroma >= self.min_chroma]
        if len(kept) < len(records):
            log.info(
                "left out %d of %d training images of %s as gray-looking (mean chroma < data.min_chroma=%g)",
                len(records) - len(kept),
                len(records),
                folder,
                self.min_chroma,
            )
        if records and not kept:
            raise DataError(
                f"{folder}: all {len(records)} training images look gray (mean chroma < data.min_chroma="
                f"{self.min_chroma:g}); lower data.min_chroma or set it to 0 to keep them"
            )
        return kept

    def setup(self, stage: str | None = None) -> None:
        """Index the folders (cached), split them and build the datasets (idempotent)."""
        if stage == "fit" and self.protocol is not None:
            raise ConfigError(
                f"data.protocol={self.protocol.name!r} is an evaluation protocol (test images only); "
                "train with data=folder"
            )
        if self.datasets is not None:
            return
        train_geometry = Geometry(RANDOM_RESIZED_CROP, self.crop_size, scale=self.crop_scale, ratio=self.crop_ratio)
        eval_geometry = Geometry(self.eval_mode, self.eval_crop_size, resize=self.eval_resize)
        self.datasets = {}
        for split, (folder, records) in self._split_records().items():
            if self.limit is not None:
                records = records[: self.limit]
            if split == "train":
                records = self._exclude_gray(records, folder)
            geometry = train_geometry if split == "train" else eval_geometry
            self.datasets[split] = ImageFolderDataset(folder, records, geometry)
        if stage == "fit" and not self.datasets["train"].records:
            raise DataError(f"{self.description}: no training images (set data.root or data.train_dir)")

    def eval_dataloader(self, split: str, crop_size: int | None = None, pin_memory: bool = True) -> DataLoader:
        """The evaluation images of one split, in order, `eval_batch_size` a batch.

        `crop_size` (None: the data's own evaluation size) takes a smaller centre crop of the
        resized image. Raises `DataError` for an empty split and `ConfigError` for a crop that
        does not fit or a protocol whose size is fixed.
        """
        check_choice("split", split, SPLITS)
        self.prepare_data()
        self.setup("test")
        dataset = self.datasets[split]
        if not dataset.records:
            raise DataError(f"{self.description}: the {split!r} split holds no images")
        if crop_size is not None:
            if self.protocol is not None and crop_size != self.protocol.size:
                raise ConfigError(
                    f"crop_size={crop_size} contradicts data.protocol={self.protocol.name!r}, "
                    f"which evaluates at {self.protocol.size} px; leave crop_size null"
                )
            if not 1 <= crop_size <= self.eval_resize:
                raise ConfigError(
                    f"crop_size={crop_size} does not fit the evaluation images resized to {self.eval_resize} px "
                    f"(data.eval_resize); expected 1..{self.eval_resize} or null"
                )
            geometry = Geometry(self.eval_mode, crop_size, resize=self.eval_resize)
            dataset = ImageFolderDataset(dataset.folder, dataset.records, geometry)
        return self._loader(dataset, self.eval_batch_size, shuffle=False, pin_memory=pin_memory)

    @property
    def val_set(self) -> ImageFolderDataset:
        """The validation images (sample sheets show the first few)."""
        self.setup()
        return self.datasets["val"]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["val"], self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        test_set = self.datasets["test"]
        return self._loader(test_set, self.eval_batch_size, shuffle=False, sampler=self._each_image_once(test_set))
