"""Batches as uint8 vs float32: what crosses the worker pipe (and the host-to-device copy), and how fast.

The same Kaggle-layout arrays (random uint8, 224 px, written to a temporary directory), random
224-px crops + flips, batch 64, 0 and 2 workers:

- ``uint8``: the loader's batches as the datasets yield them (``lab_uint8``, 3 bytes a pixel), then
  `to_lab_batch` in the main process, where it runs on the device in training;
- ``float32``: the former contract, float L and ab made in the workers (12 bytes a pixel): each item
  goes through `to_lab_batch` before collation.

Rates are images/s over one epoch per round (persistent workers, so start-up is not counted), next to
the fastest model's training rate at 224 px on this CPU (model2, batch 16, plain loop): the loader
target is 5x that.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.families import random_batch, train_config
from benchmarks.gpu import write_arrays
from benchmarks.loops import plain_step
from benchmarks.timing import interleave, rate, table
from colorization.data import LabArraysDataModule
from colorization.modules.build import build_module

IMAGES, SIZE, BATCH = 1024, 224, 64


class FloatItems(Dataset):
    """The former contract: every item leaves the worker as float32 ``l``/``ab``."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        from colorization.data.batches import to_lab_batch

        item = self.dataset[index]
        one = to_lab_batch({key: value[None] if torch.is_tensor(value) else value for key, value in item.items()})
        return {key: value[0] if torch.is_tensor(value) else value for key, value in one.items()}


def batch_bytes(batch: dict) -> int:
    return sum(value.nbytes for value in batch.values() if torch.is_tensor(value))


def epoch(loader: DataLoader, convert: bool) -> None:
    from colorization.data.batches import to_lab_batch

    for batch in loader:
        if convert:
            to_lab_batch(batch)


def run() -> str:
    try:
        import colorization.data.batches  # noqa: F401  (the uint8 batch contract)
    except ImportError:
        return "## Batches: uint8 vs float32\n\nNot measured: this checkout's datasets still yield float32 batches.\n"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        write_arrays(Path(tmp), IMAGES, SIZE)
        datamodule = LabArraysDataModule(tmp, crop_size=SIZE, batch_size=BATCH, val_fraction=0.0, test_start=IMAGES)
        datamodule.setup("fit")
        train_set = datamodule.train_set
        for workers in (0, 2):
            loaders = {
                name: DataLoader(
                    dataset, batch_size=BATCH, shuffle=True, num_workers=workers, persistent_workers=workers > 0
                )
                for name, dataset in (("uint8", train_set), ("float32", FloatItems(train_set)))
            }
            sizes = {name: batch_bytes(next(iter(loader))) for name, loader in loaders.items()}
            measured = interleave(
                {
                    "uint8": rate(lambda loader=loaders["uint8"]: epoch(loader, convert=True), len(train_set)),
                    "float32": rate(lambda loader=loaders["float32"]: epoch(loader, convert=False), len(train_set)),
                },
                f"loader, {workers} workers",
                budget_s=15,
                max_rounds=8,
            )
            for name in measured.names:
                rows.append(
                    [
                        name,
                        str(workers),
                        f"{sizes[name] / 2**20:.1f}",
                        measured.rates[name].cell("{:.0f}"),
                        measured.ratios[name].cell(suffix="x"),
                    ]
                )
    cfg = train_config(["model=model2"])
    model2 = plain_step(build_module(cfg.model, cfg.colorspace.name))
    batch = random_batch(16, SIZE)
    consumption = interleave({"model2": rate(lambda: model2(batch), 16)}, "model2 training at 224 px", budget_s=10)
    fastest = consumption.rates["model2"].median
    best_loader = max(float(row[3].split()[0]) for row in rows if row[0] == "uint8")
    return (
        f"## Batches: uint8 vs float32 through the loader ({SIZE}-px crops, batch {BATCH})\n\n"
        f"{IMAGES} random images in the Kaggle layout; one epoch per round and variant, median (min-max) "
        "over interleaved rounds; `uint8` includes `to_lab_batch` on the CPU (on a GPU it runs there).\n\n"
        + table(["batches", "workers", "MiB per batch", "img/s", "vs uint8"], rows)
        + f"\nFastest model's training consumption at {SIZE} px (model2, batch 16, plain loop): "
        f"{consumption.rates['model2'].cell('{:.1f}')} img/s; the best uint8 loader feeds "
        f"{best_loader / fastest:.0f}x that (target: 5x).\n"
    )
