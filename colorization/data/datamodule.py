"""`LabArraysDataModule`: batches of (L, ab) from Kaggle-layout Lab arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from colorization.data.ab_prior import cached_bin_counts
from colorization.data.lab_arrays import LabArrays, LabCropDataset, Split, make_split
from colorization.errors import ConfigError, DataError, check_choice

SPLITS = ("train", "val", "test")


class SplitsDataModule(L.LightningDataModule):
    """The DataLoader builder every DataModule here shares; a subclass sets `num_workers`, `pin_memory`
    and `persistent_workers` and may name its own `collate_fn` (None: PyTorch's default)."""

    collate_fn: Callable[[list], dict] | None = None
    num_workers: int
    pin_memory: bool
    persistent_workers: bool

    def _loader(
        self,
        dataset: Dataset,
        batch_size: int,
        shuffle: bool,
        pin_memory: bool = True,
        sampler: Sampler | None = None,
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def _each_image_once(self, test_set: Dataset) -> Sampler | None:
        """Under multi-process testing, this process's share of `test_set` with no image repeated; else None.

        Lightning's default `DistributedSampler` pads the shares to equal length by repeating images,
        which the test metrics would count twice. Testing runs the module outside DDP's forward, so
        shares that differ by one batch are safe; the metrics sum over every process.
        """
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return None
        return UnrepeatedDistributedSampler(
            test_set, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )


class LabArraysDataModule(SplitsDataModule):
    """Train/val/test loaders over memory-mapped Lab arrays (see `colorization.data.lab_arrays`).

    Batches are dicts: ``l`` (B, 1, s, s) L in [0, 100], ``ab`` (B, 2, s, s) a*, b*, ``index`` (B,).
    `batch_size` is per device: under data-parallel training the global batch is
    `batch_size * devices * num_nodes`.
    """

    def __init__(
        self,
        root: str,
        crop_size: int = 224,
        eval_crop_size: int | None = None,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.05,
        test_start: int | None = None,
        limit: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__()
        if root in (None, "", "???"):
            raise ConfigError("data.root is not set; expected the directory holding l/ and ab/")
        for key, value in (("batch_size", batch_size), ("crop_size", crop_size)):
            if int(value) < 1:
                raise ConfigError(f"data.{key}={value} must be a positive integer")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers={num_workers} must be >= 0")
        self.root = Path(root)
        self.crop_size = int(crop_size)
        self.eval_crop_size = int(eval_crop_size or crop_size)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.val_fraction, self.test_start, self.limit, self.seed = val_fraction, test_start, limit, seed
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.arrays: LabArrays | None = None
        self.split: Split | None = None

    def setup(self, stage: str | None = None) -> None:
        """Open and validate the arrays and compute the split (idempotent, cheap: headers only)."""
        if self.arrays is not None:
            return
        self.arrays = LabArrays(self.root)
        self.split = make_split(self.arrays.ab_counts, self.test_start, self.val_fraction, self.limit, self.seed)
        # constructing the datasets validates the crop sizes before any training starts
        self.train_set = LabCropDataset(self.arrays, self.split.train, self.crop_size, train=True)
        self.val_set = LabCropDataset(self.arrays, self.split.val, self.eval_crop_size, train=False)
        self.test_set = LabCropDataset(self.arrays, self.split.test, self.eval_crop_size, train=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(
            self.test_set, self.eval_batch_size, shuffle=False, sampler=self._each_image_once(self.test_set)
        )

    def eval_dataloader(self, split: str, crop_size: int | None = None, pin_memory: bool = True) -> DataLoader:
        """Centre crops of `crop_size` (None: the whole image) of one split, in order, `eval_batch_size` a batch.

        Prepares the data if needed. `pin_memory` False turns pinning off (e.g. on a CPU device).
        Raises `DataError` for an empty split and `ConfigError` for a crop larger than the images.
        """
        check_choice("split", split, SPLITS)
        self.prepare_data()
        self.setup("test")
        arrays = self.arrays
        indices = getattr(self.split, split)
        if len(indices) == 0:
            raise DataError(
                f"{arrays.root}: the {split!r} split holds no images ({len(arrays)} images in "
                f"{len(arrays.ab_counts)} ab file(s); the test split is the last ab file unless data.test_start "
                "says otherwise)"
            )
        largest = min(arrays.image_size)
        if crop_size is not None and not 1 <= crop_size <= largest:
            raise ConfigError(
                f"crop_size={crop_size} does not fit the {arrays.image_size} images; expected 1..{largest} or null"
            )
        dataset = LabCropDataset(arrays, indices, crop_size or largest, train=False)
        return self._loader(dataset, self.eval_batch_size, shuffle=False, pin_memory=pin_memory)

    def ab_bin_counts(self, centres: Tensor, lookup: Tensor) -> np.ndarray:
        """(Q,) pixel counts per ab bin over every full training image (not crops), for a colour prior.

        `centres` (Q, 2) are the bins, `lookup` maps uint8 (a, b) to a bin; cached beside the data
        (see `colorization.data.ab_prior`).
        """
        self.setup("fit")
        return cached_bin_counts(self.arrays, self.split.train, centres, lookup)
