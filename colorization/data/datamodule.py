"""`LabArraysDataModule`: batches of (L, ab) from Kaggle-layout Lab arrays."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from colorization.data.lab_arrays import LabArrays, LabCropDataset, Split, make_split
from colorization.errors import ConfigError


class LabArraysDataModule(L.LightningDataModule):
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
        self.split = make_split(
            self.arrays.ab_counts, self.test_start, self.val_fraction, self.limit, self.seed
        )
        # constructing the datasets validates the crop sizes before any training starts
        self.train_set = LabCropDataset(self.arrays, self.split.train, self.crop_size, train=True)
        self.val_set = LabCropDataset(self.arrays, self.split.val, self.eval_crop_size, train=False)
        self.test_set = LabCropDataset(self.arrays, self.split.test, self.eval_crop_size, train=False)

    def _loader(self, dataset: LabCropDataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)
