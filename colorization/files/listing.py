"""Listing a folder tree: each real folder and file once, whatever links lead to it.

Links are followed, but a link to a folder or file listed already (by device and inode), or to a
folder holding the listed one (a loop such as ``up -> ..``), is skipped and counted. Training's
folder index (`colorization.data.image_index`) and ``colorize --recursive`` list folders this way.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from colorization.files.photos import IMAGE_SUFFIXES


@dataclass(frozen=True)
class FileStat:
    """What listing a folder learns of a file without opening it: its size and modification time."""

    bytes: int
    mtime_ns: int


@dataclass
class FolderListing:
    """The files under a folder (relative '/'-separated path -> `FileStat`, sorted by path), and how
    many links were skipped because they lead to a folder or file already listed (or to a folder holding
    the listed one: a loop)."""

    files: dict[str, FileStat] = field(default_factory=dict)
    skipped_links: int = 0


def list_folder(folder: Path, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> FolderListing:
    """Every file below `folder` whose name ends in one of `suffixes` (any case; photos by default), hidden
    entries skipped, each real folder and file once.

    Real entries are listed first and links after them, so a file keeps its own name rather than a
    link's; a link is followed only to a folder or file not seen yet (by device and inode), never to
    `folder` or a folder holding it. A broken link with an image suffix is listed (its reading fails
    and is reported like a corrupt file's).
    """
    listing = FolderListing()
    endings = tuple(suffix.lower() for suffix in suffixes)
    seen_folders = {_inode(path) for path in (folder, *folder.resolve().parents)}
    seen_files: set[tuple[int, int]] = set()
    links: list[str] = []  # relative paths of the links met so far, followed once every real entry is listed

    def add_file(relative: str, status: os.stat_result | None) -> None:
        if status is not None:
            if (status.st_dev, status.st_ino) in seen_files:
                listing.skipped_links += 1
                return
            seen_files.add((status.st_dev, status.st_ino))
        listing.files[relative] = FileStat(status.st_size, status.st_mtime_ns) if status else FileStat(0, 0)

    def walk(start: str) -> None:
        # os.walk does not enter links to folders (followlinks=False): they wait in `links`
        for directory, subdirs, files in os.walk(folder / start):
            base = Path(directory).relative_to(folder)
            kept = []
            for name in sorted(subdirs):
                path = Path(directory, name)
                if name.startswith("."):
                    continue
                if path.is_symlink():
                    links.append((base / name).as_posix())
                elif _inode(path) not in seen_folders:
                    seen_folders.add(_inode(path))
                    kept.append(name)
            subdirs[:] = kept
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(endings):
                    continue
                path = Path(directory, name)
                if path.is_symlink():
                    links.append((base / name).as_posix())
                else:
                    add_file((base / name).as_posix(), file_status(path))

    walk(".")
    while links:
        relative = links.pop(0)
        status = file_status(folder / relative)
        if status is not None and stat.S_ISDIR(status.st_mode):
            if (status.st_dev, status.st_ino) in seen_folders:
                listing.skipped_links += 1
            else:
                seen_folders.add((status.st_dev, status.st_ino))
                walk(relative)
        elif relative.lower().endswith(endings):
            add_file(relative, status)
    listing.files = dict(sorted(listing.files.items()))
    return listing


def _inode(path: Path) -> tuple[int, int]:
    """What a file or folder is, whatever it is called: its device and inode."""
    status = path.stat()
    return status.st_dev, status.st_ino


def file_status(path: Path) -> os.stat_result | None:
    """`path`'s status through links; None for a broken link or a file that vanished meanwhile."""
    try:
        return path.stat()
    except OSError:
        return None
