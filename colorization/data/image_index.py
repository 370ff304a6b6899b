"""The list of photos under a folder, built once and cached: path, size in bytes, pixels, mean chroma.

A folder is scanned recursively for `IMAGE_SUFFIXES` files and every file is opened once by the
one photo decoder (`colorization.files.photos`; a reduced-size decode, in parallel worker
processes): that finds corrupt files before training, the oriented size of each image and its mean
chroma (to exclude gray-looking photos). The result is written as a small TSV, by default
``<folder>/.bw-colorization-index.tsv`` (or in ``index_dir``), and read back on later starts, so a
second run does not re-scan or re-open 1.2 million files. ``rescan=True`` rebuilds it after the
folder changed; files that vanish are skipped when read.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from colorization.data.images import CHROMA_THUMBNAIL, mean_chroma
from colorization.errors import DataError
from colorization.files.atomic import atomic_write, remove_partial_files
from colorization.files.photos import IMAGE_SUFFIXES, load_image, open_image, to_rgb8, upright_size

log = logging.getLogger(__name__)

INDEX_NAME = ".bw-colorization-index.tsv"
INDEX_VERSION = "# bw-colorization image index v2"
"""v2: GIFs are photos too (a v1 index left them out, so it is rebuilt once)."""
COLUMNS = ("path", "bytes", "width", "height", "chroma")


@dataclass(frozen=True)
class ImageRecord:
    """One file of a folder: `path` relative to the folder, upright `width` x `height` (0 x 0 if unreadable)."""

    path: str
    bytes: int
    width: int
    height: int
    chroma: float
    """Mean CIE chroma sqrt(a^2 + b^2) over the pixels; NaN for a file that could not be decoded."""

    @property
    def readable(self) -> bool:
        return not math.isnan(self.chroma)


def scan_folder(folder: Path) -> list[str]:
    """Paths (relative, '/'-separated, sorted) of every image file below `folder`, hidden entries skipped."""
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        base = Path(directory).relative_to(folder)
        found.extend(
            (base / name).as_posix()
            for name in files
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)
        )
    return sorted(found)


def inspect_file(folder: Path, relative: str) -> ImageRecord:
    """Open one file (reduced-size decode) and measure it; an unreadable file gives a record with NaN chroma."""
    path = folder / relative
    try:
        size = path.stat().st_size
        with open_image(path) as image:
            width, height = upright_size(image)  # at full resolution: the draft decode below may be smaller
            chroma = mean_chroma(to_rgb8(load_image(image, str(path), draft_size=CHROMA_THUMBNAIL)))
    except (DataError, OSError):  # OSError: the file vanished or cannot be opened at all
        return ImageRecord(relative, path.stat().st_size if path.exists() else 0, 0, 0, math.nan)
    return ImageRecord(relative, size, width, height, chroma)


class _Inspect(Dataset):
    """The files of a folder, inspected one per item (so a DataLoader spreads them over workers)."""

    def __init__(self, folder: Path, paths: Sequence[str]) -> None:
        self.folder, self.paths = folder, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int) -> ImageRecord:
        return inspect_file(self.folder, self.paths[item])


def _identity(record: ImageRecord) -> ImageRecord:
    return record


def build_index(folder: Path, num_workers: int = 0) -> list[ImageRecord]:
    """Scan and inspect every image file under `folder` (in `num_workers` processes)."""
    paths = scan_folder(folder)
    log.info("indexing %d image files under %s (once; the list is cached)", len(paths), folder)
    loader = DataLoader(_Inspect(folder, paths), batch_size=None, num_workers=num_workers, collate_fn=_identity)
    return list(loader)


def index_path(folder: Path, index_dir: Path | None) -> Path:
    """Where the index of `folder` is cached: inside it, or in `index_dir` under a name hashing its path."""
    if index_dir is None:
        return folder / INDEX_NAME
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return index_dir / f"{folder.name}-{digest}.tsv"


def write_index(path: Path, records: Sequence[ImageRecord]) -> None:
    """Write the TSV atomically (`colorization.files.atomic`)."""

    def write(temp: Path) -> None:
        with temp.open("w", newline="") as file:
            file.write(INDEX_VERSION + "\n")
            writer = csv.writer(file, delimiter="\t", lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows((r.path, r.bytes, r.width, r.height, f"{r.chroma:.3f}") for r in records)

    atomic_write(path, write)


def read_index(path: Path) -> list[ImageRecord] | None:
    """The records of a cached index, or None if the file is missing or not an index of this version."""
    if not path.is_file():
        return None
    with path.open(newline="") as file:
        if file.readline().rstrip("\n") != INDEX_VERSION:
            return None
        reader = csv.reader(file, delimiter="\t")
        if tuple(next(reader, ())) != COLUMNS:
            return None
        try:
            return [ImageRecord(p, int(b), int(w), int(h), float(c)) for p, b, w, h, c in reader]
        except ValueError:
            return None


def load_index(
    folder: str | Path, index_dir: str | Path | None = None, num_workers: int = 0, rescan: bool = False
) -> list[ImageRecord]:
    """Every image file under `folder` (sorted by path), from the cached index or built and cached now.

    Unreadable files are kept in the list (``readable`` False) so that the cache remembers them;
    `readable_records` drops them with one warning each. Raises `DataError` for a missing folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    path = index_path(folder, Path(index_dir) if index_dir is not None else None)
    records = None if rescan else read_index(path)
    if records is None:
        records = build_index(folder, num_workers)
        try:
            remove_partial_files(path.parent)  # what an indexing run that was killed left
            write_index(path, records)
        except OSError as error:  # a read-only folder: work without the cache
            log.warning(
                "could not cache the image list in %s (%s); set data.index_dir to a writable directory", path, error
            )
    return records


def readable_records(folder: str | Path, records: Sequence[ImageRecord]) -> list[ImageRecord]:
    """The readable records; each unreadable file is named in one warning. No readable image: `DataError`."""
    good = [r for r in records if r.readable]
    for record in records:
        if not record.readable:
            log.warning("skipping %s: not a readable image", Path(folder) / record.path)
    if not good:
        raise DataError(
            f"{folder}: no readable image found ({len(records)} file(s) ending in {', '.join(IMAGE_SUFFIXES)}; "
            f"{len(records) - len(good)} unreadable)"
        )
    return good
