"""Loader throughput: a folder of JPEGs (``data=folder``) vs the same images packed into Lab arrays,
against what the models consume on the same CPU. ``python -m benchmarks loader``.

The folder holds ImageNet-like photos: JPEG, 500x375, quality 90, cut from scikit-image's colour
photos. Training loaders (random crops + flips of 224 px, batch 32) are iterated for whole epochs
after one warm-up epoch (persistent workers, so worker start-up is not counted); the folder is
packed with ``colorization.pack`` at 224 for the memmap comparison. Model rates are training steps
on random 224-px batches: the study CNN (model1, and model2, the fastest model) and pix2pix.
Batches leave the loader as uint8; their conversion to Lab belongs to the model's step on the
device, and is timed separately here (``to_lab_batch``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.bench_cnn import TrainStep
from benchmarks.bench_gan import images_per_second
from benchmarks.timing import SMOKE
from colorization.data import LabArraysDataModule
from colorization.data.batches import to_lab_batch
from colorization.data.folder import ImageFolderDataModule
from colorization.data.packing import pack
from colorization.files.builtin_photos import TRAIN_PHOTOS, load_photo

PHOTO_SIZE = (500, 375)
CROP = 224
BATCH = 32


def write_jpegs(folder: Path, count: int) -> Path:
    """`count` 500x375 JPEGs (quality 90) of random windows of the built-in photos."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    photos = [load_photo(name) for name in TRAIN_PHOTOS]
    width, height = PHOTO_SIZE
    for k in range(count):
        photo = photos[k % len(photos)]
        scale = min(photo.shape[0] / height, photo.shape[1] / width)
        w, h = int(width * scale * rng.uniform(0.5, 1.0)), int(height * scale * rng.uniform(0.5, 1.0))
        top, left = int(rng.integers(0, photo.shape[0] - h + 1)), int(rng.integers(0, photo.shape[1] - w + 1))
        window = Image.fromarray(photo[top : top + h, left : left + w]).resize(PHOTO_SIZE, Image.Resampling.BILINEAR)
        window.save(folder / f"{k:05d}.jpg", quality=90)
    return folder


def loader_rate(loader, epochs: int) -> float:
    """Images per second over `epochs` epochs, after one untimed epoch."""
    for _ in loader:
        pass
    start, images = time.perf_counter(), 0
    for _ in range(epochs):
        for batch in loader:
            images += len(batch["index"])
    return images / (time.perf_counter() - start)


def conversion_rate(batch: dict, repeats: int = 5) -> float:
    """Images per second of `to_lab_batch` on one uint8 batch (CPU)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        to_lab_batch(batch)
        times.append(time.perf_counter() - start)
    return len(batch["index"]) / statistics.median(times)


def model_rate(step: TrainStep, batch: int, steps: int = 2) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def run(images: int = 32 if SMOKE else 256, epochs: int = 1) -> str:
    rows = ["| what | img/s | vs fastest model |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_jpegs(Path(tmp) / "photos", images)
        packed = pack(folder, Path(tmp) / "packed", size=CROP, workers=2)
        datamodules = {
            "data=folder, {} workers (JPEG decode + random-resized crop + flip)": lambda workers: ImageFolderDataModule(
                root=str(folder), crop_size=CROP, batch_size=BATCH, val_fraction=0, test_fraction=0,
                num_workers=workers, persistent_workers=workers > 0,
            ),
            "data=kaggle on the packed arrays, {} workers (random crop + flip)": lambda workers: LabArraysDataModule(
                str(packed), crop_size=CROP, batch_size=BATCH, val_fraction=0.0, test_start=images,
                num_workers=workers, persistent_workers=workers > 0,
            ),
        }  # fmt: skip
        rates: dict[str, float] = {}
        first_batches = []  # one uint8 batch of each kind, for the conversion rates
        for label, build in datamodules.items():
            for workers in (0, 2):
                dm = build(workers)
                dm.setup("fit")
                rates[label.format(workers)] = loader_rate(dm.train_dataloader(), epochs)
                if workers == 0:
                    first_batches.append(next(iter(dm.train_dataloader())))
    rgb_batch, lab_batch = first_batches
    rates["to_lab_batch of rgb_uint8 (kornia RGB -> Lab), CPU"] = conversion_rate(rgb_batch)
    rates["to_lab_batch of lab_uint8 (scale + offset), CPU"] = conversion_rate(lab_batch)
    models = {
        "training: model1 (study CNN), batch 16": model_rate(TrainStep("lab", 16, CROP), 16),
        "training: model2 (stride 2, the fastest model), batch 16": model_rate(
            TrainStep("lab", 16, CROP, stride=2), 16
        ),
        "training: pix2pix, batch 16": images_per_second(["model=pix2pix"], 16, CROP, batches=4)[0],
    }
    fastest = max(models.values())
    rows += [f"| {name} | {rate:.1f} | {rate / fastest:.1f}x |" for name, rate in {**rates, **models}.items()]
    header = (
        f"## Loader vs model throughput: {images} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, {CROP}-px crops, "
        f"batch {BATCH}, {torch.get_num_threads()} torch threads, {epochs} timed epochs\n\n"
    )
    return header + "\n".join(rows) + "\n"
