"""Atomic file writes: a file is either absent, its old version, or complete; never half written.

Every output of a run (checkpoints, metrics, results, pictures) is written to a temporary file in
the target's own directory, flushed to disk, and renamed over the target. A rename within one
directory is atomic on POSIX file systems; a temporary file elsewhere (``$TMPDIR`` on another
file system) would turn the final move into a copy that a kill can cut short.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

TEMP_MARK = ".partial-"
"""Temporary files are named ``.<target name>.partial-<pid>``: hidden, and findable by `remove_partial_files`."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)`` and move the finished file to `path` in one step.

    `write` writes the whole content to the path it is given (e.g. ``lambda p: torch.save(obj, p)``).
    If it raises, or the process is killed, `path` keeps whatever it held before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.parent / f".{path.name}{TEMP_MARK}{os.getpid()}"
    try:
        write(temp)
        with temp.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def strict_json(data: Any, **dumps_kwargs: Any) -> str:
    """`data` as strict JSON: NaN and infinities become ``null`` (``json.dumps`` would write bare ``NaN``)."""
    return json.dumps(_finite_or_none(data), allow_nan=False, **dumps_kwargs)


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write `data` to `path` atomically as strict, indented JSON (non-finite numbers as ``null``)."""
    return atomic_write_text(path, strict_json(data, indent=2, sort_keys=True) + "\n")


def remove_partial_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in `directory` (not recursive); returns them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    orphans = [p for p in directory.iterdir() if p.name.startswith(".") and TEMP_MARK in p.name and p.is_file()]
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def _fsync_directory(directory: Path) -> None:
    # the rename itself lives in the directory: flush it too, where the platform allows
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
