"""Packing a folder of photos into the Kaggle Lab-array layout (the work behind ``python -m colorization.pack``).

Every readable image under SRC (sorted by path) is resized (shorter side to ``--size``), centre
cropped to ``--size`` x ``--size`` exactly as ``data=folder`` evaluates, converted to Lab by the
project's colour code and stored in the Kaggle uint8 encoding (`colorization.data.batches`):
``DST/l/gray_scale.npy`` and ``DST/ab/ab/ab1.npy``, ``ab2.npy``, ... of ``--chunk`` images each
(``data=kaggle`` takes the last ab file as its test set). ``DST/names.txt`` lists the source file
of each image, in order.

Packing writes into ``.<DST name>.partial-resumable`` beside DST
(`colorization.files.atomic.resumable_directory`) and records its settings and progress there, so
an interrupted or killed run continues where it stopped when started again with the same
arguments; DST appears (by a rename) only when complete. An existing DST is never touched.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from colorization.data.batches import RGB_KEY, lab_to_uint8, rgb_uint8_to_lab
from colorization.data.folder import Geometry, ImageFolderDataset
from colorization.data.image_index import ImageRecord, load_index, readable_records
from colorization.data.lab_arrays import AB_DIR, L_FILE
from colorization.data.protocols import RESIZE_CENTRE_CROP
from colorization.errors import ConfigError, DataError
from colorization.files.atomic import atomic_write_json, atomic_write_text, remove_partial_files, resumable_directory

log = logging.getLogger(__name__)

SETTINGS_FILE = "pack.json"
PROGRESS_FILE = "progress.txt"
NAMES_FILE = "names.txt"
KAGGLE_CHUNK = 10_000
"""Images per ab file, as in the Kaggle release (10k, 10k, 5k)."""
BATCH = 64
"""Images converted together and written between two progress records (a restart redoes at most this many)."""


def chunk_counts(total: int, chunk: int) -> list[int]:
    """Images per ab file: `chunk`, `chunk`, ..., the rest."""
    return [min(chunk, total - start) for start in range(0, total, chunk)]


def create_arrays(partial: Path, total: int, size: int, chunk: int) -> None:
    """Preallocate the uint8 .npy files of the layout (on disk, memory-mapped)."""
    (partial / L_FILE).parent.mkdir(parents=True, exist_ok=True)
    (partial / AB_DIR).mkdir(parents=True, exist_ok=True)
    np.lib.format.open_memmap(partial / L_FILE, mode="w+", dtype=np.uint8, shape=(total, size, size)).flush()
    for number, count in enumerate(chunk_counts(total, chunk), start=1):
        path = partial / AB_DIR / f"ab{number}.npy"
        np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size, 2)).flush()


def prepare_partial(partial: Path, settings: dict) -> int:
    """Start or continue the partial directory; returns how many images are already packed.

    The settings file is written last (atomically), after the arrays: a partial without it was
    stopped while being set up, and is set up again.
    """
    settings_path = partial / SETTINGS_FILE
    if settings_path.is_file():
        if json.loads(settings_path.read_text()) != settings:
            raise DataError(f"{partial}: an unfinished pack with other settings or sources; delete it to start again")
        progress = partial / PROGRESS_FILE
        return int(progress.read_text()) if progress.is_file() else 0
    create_arrays(partial, len(settings["names"]), settings["size"], settings["chunk"])
    atomic_write_json(settings_path, settings)
    return 0


def record_progress(partial: Path, done: int) -> None:
    """Record that the first `done` images are in the arrays (which must be flushed to disk first)."""
    atomic_write_text(partial / PROGRESS_FILE, str(done))


def pack(src: Path, dst: Path, size: int, chunk: int = KAGGLE_CHUNK, workers: int = 2, min_chroma: float = 0.0) -> Path:
    """Pack `src` into the Kaggle layout at `dst` (see the module docstring); returns `dst`."""
    if dst.exists():
        raise DataError(f"{dst}: already exists; refusing to overwrite it (choose a new destination)")
    if size < 1 or chunk < 1 or workers < 0:
        raise ConfigError(f"--size={size}, --chunk={chunk} and --workers={workers} must be positive (workers >= 0)")
    records = [r for r in readable_records(src, load_index(src, num_workers=workers)) if r.chroma >= min_chroma]
    if not records:
        raise DataError(f"{src}: no image has a mean chroma of at least --min-chroma={min_chroma:g}")
    settings = {"source": str(src.resolve()), "size": size, "chunk": chunk, "names": [r.path for r in records]}
    remove_partial_files(dst.parent)  # what killed writers left; a resumable pack is kept to continue
    with resumable_directory(dst) as partial:
        done = prepare_partial(partial, settings)
        fill_arrays(partial, src, records, size, chunk, workers, done)
        atomic_write_text(partial / NAMES_FILE, "".join(f"{name}\n" for name in settings["names"]))
        (partial / PROGRESS_FILE).unlink(missing_ok=True)
    log.info("packed %d images of %s into %s", len(records), src, dst)
    return dst


def fill_arrays(
    partial: Path, src: Path, records: list[ImageRecord], size: int, chunk: int, workers: int, done: int
) -> None:
    """Convert the images of `records` after the first `done` into the arrays of `partial`, recording
    the progress after each `BATCH` (in `workers` decoding processes)."""
    dataset = ImageFolderDataset(src, records, Geometry(RESIZE_CENTRE_CROP, size, resize=size))
    # batches are lists that keep an unreadable file's place (None) so it can be named
    loader = DataLoader(
        Subset(dataset, range(done, len(dataset))), batch_size=BATCH, num_workers=workers, collate_fn=list
    )
    counts = chunk_counts(len(records), chunk)
    l_array = np.load(partial / L_FILE, mmap_mode="r+")
    ab_arrays = [np.load(partial / AB_DIR / f"ab{k}.npy", mmap_mode="r+") for k in range(1, len(counts) + 1)]
    index = done
    with tqdm(total=len(records), initial=done, unit="img", desc=f"packing {src.name}") as bar:
        for items in loader:
            for offset, item in enumerate(items):
                if item is None:
                    raise DataError(
                        f"{src / records[index + offset].path}: became unreadable since the folder was indexed; "
                        f"fix or remove it, then pack again after deleting {partial}"
                    )
            l, ab = rgb_uint8_to_lab(torch.stack([item[RGB_KEY] for item in items]))
            lab_cv = lab_to_uint8(torch.cat([l, ab], dim=1)).numpy()
            for row in lab_cv:
                l_array[index] = row[0]
                ab_arrays[index // chunk][index % chunk] = row[1:].transpose(1, 2, 0)
                index += 1
            l_array.flush()
            for array in ab_arrays:
                array.flush()
            record_progress(partial, index)
            bar.update(len(items))
