"""The list of photos under a folder, built once and cached: path, size in bytes, pixels, mean chroma.

A folder is listed recursively for `IMAGE_SUFFIXES` files (`colorization.files.listing.list_folder`):
each real folder and file once, whatever links lead to it, so a link back up the tree or a second name for a folder
never repeats a photo (a repeated photo could land in both the training and the test split). Every
file is opened once by the one photo decoder (`colorization.files.photos`; a reduced-size decode, in
parallel worker processes): that finds corrupt files before training, the oriented size of each
image and its mean chroma (to exclude gray-looking photos). The result is written as a small TSV,
by default ``<folder>/.bw-colorization-index.tsv`` (or in ``index_dir``; a read-only folder's goes
to the user's cache folder), and read back on later starts, so a second run does not re-open 1.2
million files. Each start lists the folder again (names, sizes and modification times, no file is
opened) and re-reads only the files that are new or changed; files that are gone leave the list.
``rescan=True`` re-reads every file.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from colorization.data.images import CHROMA_THUMBNAIL, mean_chroma
from colorization.errors import DataError
from colorization.files.atomic import atomic_write, remove_partial_files
from colorization.files.downloads import cache_dir
from colorization.files.listing import FileStat, file_status, list_folder
from colorization.files.photos import IMAGE_SUFFIXES, load_image, open_image, to_rgb8, upright_size

log = logging.getLogger(__name__)

INDEX_NAME = ".bw-colorization-index.tsv"
INDEX_VERSION = "# bw-colorization image index v3"
"""v3: each file's modification time, so a start can tell what changed (a v2 index is rebuilt once)."""
COLUMNS = ("path", "bytes", "mtime_ns", "width", "height", "chroma")
USER_INDEX_DIR = "indexes"
"""Where, in the user's cache folder (`colorization.files.downloads.cache_dir`), the lists of read-only folders go."""


@dataclass(frozen=True)
class ImageRecord:
    """One file of a folder: `path` relative to the folder, upright `width` x `height` (0 x 0 if unreadable)."""

    path: str
    bytes: int
    width: int
    height: int
    chroma: float
    """Mean CIE chroma sqrt(a^2 + b^2) over the pixels; NaN for a file that could not be decoded."""
    mtime_ns: int
    """The file's modification time when it was read: a different one means the file changed."""

    @property
    def readable(self) -> bool:
        return not math.isnan(self.chroma)

    @property
    def stat(self) -> FileStat:
        return FileStat(self.bytes, self.mtime_ns)


def scan_folder(folder: Path) -> list[str]:
    """Paths (relative, '/'-separated, sorted) of every image file below `folder` (see `list_folder`)."""
    return list(list_folder(folder).files)


def inspect_file(folder: Path, relative: str) -> ImageRecord:
    """Open one file (reduced-size decode) and measure it; an unreadable file gives a record with NaN chroma."""
    path = folder / relative
    status = file_status(path)
    size, mtime_ns = (status.st_size, status.st_mtime_ns) if status is not None else (0, 0)
    try:
        with open_image(path) as image:
            width, height = upright_size(image)  # at full resolution: the draft decode below may be smaller
            chroma = mean_chroma(to_rgb8(load_image(image, str(path), draft_size=CHROMA_THUMBNAIL)))
    except (DataError, OSError):  # OSError: the file vanished or cannot be opened at all
        return ImageRecord(relative, size, 0, 0, math.nan, mtime_ns)
    return ImageRecord(relative, size, width, height, chroma, mtime_ns)


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


def build_index(folder: Path, paths: Sequence[str], num_workers: int = 0) -> list[ImageRecord]:
    """Inspect the image files `paths` of `folder` (in `num_workers` processes)."""
    loader = DataLoader(_Inspect(folder, paths), batch_size=None, num_workers=num_workers, collate_fn=_identity)
    return list(loader)


def index_path(folder: Path, index_dir: Path | None) -> Path:
    """Where the index of `folder` is cached: inside it, or in `index_dir` under a name hashing its path."""
    if index_dir is None:
        return folder / INDEX_NAME
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return index_dir / f"{folder.name}-{digest}.tsv"


def index_places(folder: Path, index_dir: Path | None) -> list[Path]:
    """Where the index of `folder` may be cached, in the order it is written: `index_dir` when given; else
    inside the folder, then (a read-only folder) in the user's cache folder."""
    if index_dir is not None:
        return [index_path(folder, index_dir)]
    return [index_path(folder, None), index_path(folder, cache_dir() / USER_INDEX_DIR)]


def write_index(path: Path, records: Sequence[ImageRecord]) -> None:
    """Write the TSV atomically (`colorization.files.atomic`)."""

    def write(temp: Path) -> None:
        with temp.open("w", newline="") as file:
            file.write(INDEX_VERSION + "\n")
            writer = csv.writer(file, delimiter="\t", lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows((r.path, r.bytes, r.mtime_ns, r.width, r.height, f"{r.chroma:.3f}") for r in records)

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
            return [ImageRecord(p, int(b), int(w), int(h), float(c), int(t)) for p, b, t, w, h, c in reader]
        except ValueError:
            return None


def load_index(
    folder: str | Path, index_dir: str | Path | None = None, num_workers: int = 0, rescan: bool = False
) -> list[ImageRecord]:
    """Every image file under `folder` (sorted by path), from the cached index, brought up to date, or built now.

    The folder is listed (`list_folder`) and checked against the cached index: files that are new or
    whose size or modification time changed are read (in `num_workers` processes), the others keep
    their record; `rescan` reads every file. An index that changed is cached again (`index_places`).
    Unreadable files are kept in the list (``readable`` False) so that the cache remembers them;
    `readable_records` drops them with one warning each. Raises `DataError` for a missing folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    listing = list_folder(folder)
    if listing.skipped_links:
        log.warning(
            "%s: skipped %d link(s) that lead to a folder or photo listed already, or to a folder holding this one "
            "(a loop); each real folder and photo is listed once",
            folder,
            listing.skipped_links,
        )
    places = index_places(folder, Path(index_dir) if index_dir is not None else None)
    cached = None if rescan else _newest_index(places)
    kept = {r.path: r for r in cached or () if listing.files.get(r.path) == r.stat}
    to_read = [path for path in listing.files if path not in kept]
    if cached is None:
        log.info("indexing %d image files under %s (once; the list is cached)", len(to_read), folder)
    elif to_read or len(kept) < len(cached):
        gone = sum(r.path not in listing.files for r in cached)
        log.info(
            "%s changed since its file list was cached (%d file(s) gone); reading the %d new or changed file(s)",
            folder,
            gone,
            len(to_read),
        )
    else:
        return cached
    read = {r.path: r for r in build_index(folder, to_read, num_workers)}
    records = [kept.get(path) or read[path] for path in listing.files]
    _save_index(folder, places, records)
    return records


def _newest_index(places: Iterable[Path]) -> list[ImageRecord] | None:
    """The records of the most recently written index among `places` that holds one, else None."""
    written = sorted((p for p in places if p.is_file()), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    return next((records for records in map(read_index, written) if records is not None), None)


def _save_index(folder: Path, places: Sequence[Path], records: Sequence[ImageRecord]) -> None:
    """Cache `records` in the first of `places` that can be written; a warning when none can."""
    problems = []
    for place in places:
        try:
            remove_partial_files(place.parent)  # what an indexing run that was killed left
            write_index(place, records)
        except OSError as error:
            problems.append(f"{place}: {error.strerror or error}")
            continue
        if place != places[0]:
            log.info("the file list of %s is cached in %s (%s)", folder, place, problems[0])
        return
    log.warning("could not cache the image list (%s); set data.index_dir to a writable directory", "; ".join(problems))


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
