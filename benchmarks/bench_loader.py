"""Loader vs model: do the training loaders deliver images faster than the fastest model trains on them?

The folder holds ImageNet-like photos: JPEG, 500x375, quality 90, cut from scikit-image's colour
photos; ``colorization.pack`` packs the same folder into Lab arrays (the Kaggle layout) at 224 px.
Interleaved round by round, against the training rate of the fastest model (model2, the stride-2
study CNN, batch 16 at 224 px in the plain loop):

- the training loaders, ``data=folder`` (JPEG decode, random-resized crop, flip) and ``data=kaggle``
  on the packed arrays (random crop, flip), with 0 and 2 workers: one whole epoch per call, batch 32,
  persistent workers (started in the untimed warm-up epoch);
- `to_lab_batch` on one batch of each, on the CPU: batches leave the loader as uint8 and become
  float Lab in the model's step, on the device (here the CPU, on a GPU the GPU);
- the default model (model1, ``model=cnn``) training on the same batches, for scale.

Goal: a loader with 2 workers delivers >= 5x what the fastest model consumes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from benchmarks.families import build_from, random_batch
from benchmarks.loops import plain_step
from benchmarks.sections import Section, Summary, verdict
from benchmarks.timing import SMOKE, interleave, rate, table
from colorization.data import LabArraysDataModule
from colorization.data.batches import to_lab_batch
from colorization.data.folder import ImageFolderDataModule
from colorization.data.packing import pack
from colorization.files.builtin_photos import TRAIN_PHOTOS, load_photo

PHOTO_SIZE = (500, 375)
IMAGES = 32 if SMOKE else 256
CROP = 224
BATCH = 32
MODEL_BATCH = 16
GOAL = 5.0
FASTEST = "training: model2 (the fastest model)"
DEFAULT = "training: model1 (`model=cnn`, the default)"
FOLDER, ARRAYS = "JPEG folder", "packed arrays"
CONFIG = {FOLDER: "data=folder", ARRAYS: "data=kaggle"}


def loader_label(name: str, workers: int) -> str:
    return f"{name} (`{CONFIG[name]}`), {workers} workers"


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


def epoch(loader: DataLoader) -> None:
    for _ in loader:
        pass


def training(model: str, steps: int) -> Callable[[], float]:
    """A variant: `steps` plain-loop steps of `model` on random batches of `MODEL_BATCH` at `CROP` px."""
    step = plain_step(build_from([f"model={model}"]))
    batch = random_batch(MODEL_BATCH, CROP)
    return rate(lambda: [step(batch) for _ in range(steps)], MODEL_BATCH * steps)


def run() -> Section:
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_jpegs(Path(tmp) / "photos", IMAGES)
        packed = pack(folder, Path(tmp) / "packed", size=CROP, workers=2)
        datamodules = {
            FOLDER: lambda workers: ImageFolderDataModule(
                root=str(folder), crop_size=CROP, batch_size=BATCH, val_fraction=0, test_fraction=0,
                num_workers=workers, persistent_workers=workers > 0,
            ),
            ARRAYS: lambda workers: LabArraysDataModule(
                str(packed), crop_size=CROP, batch_size=BATCH, val_fraction=0.0, test_start=IMAGES,
                num_workers=workers, persistent_workers=workers > 0,
            ),
        }  # fmt: skip
        calls = {FASTEST: training("model2", steps=4)}
        for name, build in datamodules.items():
            for workers in (0, 2):
                datamodule = build(workers)
                datamodule.setup("fit")
                loader = datamodule.train_dataloader()
                calls[loader_label(name, workers)] = rate(lambda loader=loader: epoch(loader), IMAGES)
            sample = build(0)
            sample.setup("fit")
            batch = next(iter(sample.train_dataloader()))
            kind = "rgb_uint8: kornia's RGB -> Lab" if "rgb_uint8" in batch else "lab_uint8: scale and offset"
            calls[f"`to_lab_batch` of one batch ({name}, {kind})"] = rate(lambda b=batch: to_lab_batch(b), BATCH)
        calls[DEFAULT] = training("model1", steps=1)
        measured = interleave(calls, "loader", budget_s=30, max_rounds=8)
    rows = [[n, measured.rates[n].cell("{:.0f}"), measured.ratios[n].cell("{:.1f}", "x")] for n in measured.names]
    fed = {name: measured.ratios[loader_label(name, 2)].median for name in datamodules}
    figures = ", ".join(f"the {name} {ratio:.1f}x" for name, ratio in fed.items())
    short = [name for name, ratio in fed.items() if ratio < GOAL]
    conclusion = (
        f"With 2 workers the loaders deliver {figures} what the fastest model trains on at {CROP} px, "
        + (f"so the {' and the '.join(short)} can hold it back" if short else "so neither holds it back")
        + f"; the default model (model1) consumes {measured.ratios[DEFAULT].median:.2f}x the fastest's rate."
    )
    return Section(
        title="Loader vs model: images per second delivered and consumed",
        body=(
            f"{IMAGES} JPEGs of {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} (and the same packed into Lab arrays), {CROP}-px "
            f"crops, loader batches of {BATCH}, one epoch per call; models train on random batches of "
            f"{MODEL_BATCH} in the plain loop. Median (min-max) over interleaved rounds, ratios paired per round.\n\n"
            + table(["what", "img/s", "vs the fastest model"], rows)
        ),
        conclusion=conclusion,
        summary=Summary(
            f"Loader vs the fastest model's training at {CROP} px (2 workers)",
            figures,
            f">= {GOAL:.0f}x",
            verdict(not short) + (f" ({', '.join(short)})" if short else ""),
        ),
    )
