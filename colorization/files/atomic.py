"""Atomic writes: every file and folder the project writes is absent, its old version, or complete.

One scheme serves every writer (checkpoints, results, sheets, colorized photos, exports, downloads,
indexes, packs, the ab prior): the content is written under a hidden temporary name in the target's
own folder, ``.<target name>.partial-<pid>`` (`temp_path`), flushed to disk, and renamed onto the
target. A rename within one folder is atomic on POSIX file systems; a temporary elsewhere
(``$TMPDIR`` on another file system) would turn the final move into a copy that a kill can cut short.

- `atomic_write` (and `atomic_write_bytes`, `_text`, `_json`): a file, written by a callback.
- `atomic_directory`: a folder, built in one go under the temporary name and renamed into place.
- `resumable_directory`: a folder built over several runs (``pack``). Its temporary name carries the
  fixed tag ``resumable`` instead of a pid, because the next run (another pid) must find it and
  continue it, and the clean-up must not take it for a dead writer's remains.
- `remove_partial_files`: what each writer calls at start-up on the folder it writes into. It deletes
  the temporaries of writers that died (a kill, a power cut): those whose pid is no longer a running
  process on this machine. A live process's temporary (a second run writing into the same folder)
  and resumable folders are kept. `check_writable` does the same after making sure the folder can
  be written, so that a run stops with one line before it works rather than when it writes.

An error while writing removes the temporary and leaves the target as it was. This module is the
only one that renames files (``tests/test_atomic.py`` checks the package's source for others).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from colorization.errors import ConfigError, DataError

TEMP_MARK = ".partial-"
"""Temporaries are named ``.<target name>.partial-<tag>``: hidden, and findable by `remove_partial_files`."""
RESUMABLE_TAG = "resumable"
"""The tag of `resumable_directory`'s temporary, where other temporaries carry their writer's pid."""
TEMP_NAME = re.compile(rf"\..+{re.escape(TEMP_MARK)}(?P<tag>[^./]+)")
"""A temporary's name; `tag` is a pid (digits) or `RESUMABLE_TAG`."""


def temp_path(path: str | Path, tag: str | None = None) -> Path:
    """Where `path` is written before it is renamed into place: ``.<name>.partial-<tag>`` beside it.

    `tag` defaults to this process's id, so that concurrent processes writing the same target
    never share a temporary (within one process, one thread writes a given target at a time).
    """
    path = Path(path)
    return path.parent / f".{path.name}{TEMP_MARK}{os.getpid() if tag is None else tag}"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)`` and move the finished file to `path` in one step.

    `write` writes the whole content to the path it is given (e.g. ``lambda p: torch.save(obj, p)``)
    and raises if the content is not what it should be (nothing is then kept). If it raises, or the
    process is killed, `path` keeps whatever it held before.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    try:
        write(temp)
        _fsync_file(temp)
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


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Build the directory `path` inside the yielded (empty) temporary directory; it is renamed to `path`
    when the block ends.

    A directory is never renamed onto an existing `path`: that raises `FileExistsError` (e.g. another
    process finished the same directory first). On any error the temporary is deleted and `path` is
    left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    _remove(temp)  # a dead process's, whose pid this process now has: no live writer uses the name
    temp.mkdir()
    try:
        yield temp
        _move_into_place(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


@contextmanager
def resumable_directory(path: str | Path) -> Iterator[Path]:
    """Build the directory `path` over as many runs as it takes: the yielded temporary survives an error
    or a kill, and the next call for the same `path` yields it again, with what it holds, to continue.

    The temporary is ``.<name>.partial-resumable`` (`RESUMABLE_TAG` instead of a pid: see the module
    docstring). It is locked while yielded, so two live runs never write it at once: a second one
    gets a `DataError`. When the block ends without an error it is renamed to `path`, which must not
    exist (`FileExistsError`). The caller records in it what it needs to continue (settings, progress).
    """
    path = Path(path)
    temp = temp_path(path, RESUMABLE_TAG)
    temp.mkdir(parents=True, exist_ok=True)
    with _locked(temp):
        yield temp
        _move_into_place(temp, path)


def remove_partial_files(directory: str | Path, recursive: bool = False) -> list[Path]:
    """Delete the temporaries that dead writers left in `directory` (and its sub-folders with `recursive`).

    A temporary (file or folder) is deleted when the pid in its name is not a running process on
    this machine; a live process's is kept (it is still writing), and so are resumable folders
    (`resumable_directory`: the next run continues them). Returns the deleted paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for folder, subfolders, files in os.walk(directory):
        for name in [*subfolders, *files]:
            if _is_leftover(name):
                _remove(Path(folder) / name)
                removed.append(Path(folder) / name)
        # never look inside a temporary: a live writer's content is its own business
        subfolders[:] = [name for name in subfolders if recursive and not TEMP_NAME.fullmatch(name)]
    return removed


def check_writable(directory: str | Path, key: str) -> None:
    """Make sure `directory` can be created and written to, creating nothing; a `ConfigError` naming `key`
    (the setting or option that chose it) otherwise. Then `remove_partial_files` in it.

    Probes the directory, or the nearest parent that exists, with a temporary file that is removed
    again: permission bits would miss a read-only mount, and root passes them all.
    """
    directory = Path(directory)
    existing = next(p for p in (directory, *directory.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a directory")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{key}={str(directory)!r} is not writable ({reason}); choose another directory") from None
    remove_partial_files(directory)


def _is_leftover(name: str) -> bool:
    """Whether `name` is a temporary whose writer is dead (see `remove_partial_files`)."""
    match = TEMP_NAME.fullmatch(name)
    return match is not None and match["tag"].isdigit() and not _running(int(match["tag"]))


def _running(pid: int) -> bool:
    """Whether `pid` is a process running on this machine (this process counts)."""
    if pid == os.getpid():
        return True
    if pid <= 0:  # no writer has this pid, and os.kill would signal a process group
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:  # not a pid this system can have
        return False
    return True


def _move_into_place(temp: Path, path: Path) -> None:
    """Rename the finished directory `temp` to `path` (which must not exist), flushed to disk first."""
    # os.replace would also replace an empty directory or refuse a full one; check so it never does
    if path.exists() or path.is_symlink():
        raise FileExistsError(errno.EEXIST, "already exists; not replaced", str(path))
    for folder, _, files in os.walk(temp):
        for name in files:
            _fsync_file(Path(folder) / name)
        _fsync_directory(Path(folder))
    os.replace(temp, path)
    _fsync_directory(path.parent)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` for the block; `DataError` if another process holds it.

    The kernel releases the lock when the holder dies, so a killed run never leaves it locked.
    """
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{directory}: another process is writing it now; wait for it to finish") from None
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def _remove(path: Path) -> None:
    """Delete a file, link or directory tree, if it is there (another process may be deleting it too)."""
    if not (path.is_dir() and not path.is_symlink()):
        path.unlink(missing_ok=True)
        return
    with suppress(FileNotFoundError):
        shutil.rmtree(path)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(item) for item in value]
    return value


def _fsync_file(path: Path) -> None:
    with path.open("rb") as file:  # a read-only descriptor suffices, and works for read-only files
        os.fsync(file.fileno())


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
