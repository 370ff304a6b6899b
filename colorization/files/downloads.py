"""Downloading weight files into the cache folder, checked: the one place that fetches from the network.

A download goes to a temporary file in the cache folder, is checked (its size, the sha256 prefix
where one is published, and whatever the caller checks of its content) and only then renamed into
place, so a failed, partial or wrong download leaves nothing behind; the error says how to fetch the
file by hand. A caller can record the sha256 of what was kept beside it (``<file>.sha256``, in
``sha256sum``'s format), so that a later use can tell the file is still what was checked. Offline
(``offline=True`` or ``COLORIZATION_OFFLINE=1``) nothing is ever fetched. Which files exist, and
under which names, is the release table's business (`colorization.inference.releases`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from colorization.errors import DataError
from colorization.files.atomic import atomic_write, atomic_write_text, check_writable

CACHE_ENV = "COLORIZATION_CACHE"
OFFLINE_ENV = "COLORIZATION_OFFLINE"
DEFAULT_CACHE = Path("~/.cache/bw-colorization")
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0
"""Seconds without a byte from the server before a download is given up."""
DIGEST_SUFFIX = ".sha256"
"""The record of a downloaded file's sha256 is ``<file>.sha256`` beside it."""


def cache_dir() -> Path:
    """The user's cache folder, ``$COLORIZATION_CACHE`` or ``~/.cache/bw-colorization``: downloaded weights,
    and the file lists of read-only photo folders (`colorization.data.image_index`)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def download(
    url: str,
    target: Path,
    size: int | None = None,
    sha256_prefix: str = "",
    label: str = "",
    progress: bool = True,
    check: Callable[[Path], None] | None = None,
) -> str:
    """Fetch `url` to `target` in the cache folder atomically (`colorization.files.atomic`), checking its
    size (`size`, else the announced Content-Length), its sha256 prefix and, with `check`, its content;
    `label` names the weights in errors. Returns the sha256 (hex) of what was kept. Raises `DataError`, or
    `ConfigError` for a cache folder that cannot be written.

    `check(path)` gets the complete download before it is kept and raises `DataError` when it is not
    what it should be (an error page served with status 200, a file of another kind).
    """
    check_writable(target.parent, CACHE_ENV)  # also removes what killed downloads left in the cache
    digest = hashlib.sha256()

    def fetch(temporary: Path) -> None:
        # a failed check raises, so that nothing is kept
        received = 0
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, temporary.open("wb") as file:
            announced = response.headers.get("Content-Length")
            total = int(announced) if announced and announced.isdigit() else size
            with _progress_bar(total, target.name, progress) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        expected = size if size is not None else total
        if expected is not None and received != expected:
            raise DataError(f"got {received} of {expected} bytes")
        if not digest.hexdigest().startswith(sha256_prefix):
            raise DataError(f"sha256 {digest.hexdigest()[:16]}... does not start with {sha256_prefix}")
        if check is not None:
            check(temporary)

    try:
        atomic_write(target, fetch)
    except (urllib.error.URLError, http.client.HTTPException, OSError, DataError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataError(
            f"{url}: downloading the {label or target.name!r} weights failed ({reason}); {by_hand(url, target)}"
        ) from None
    return digest.hexdigest()


def record_digest(path: Path, sha256: str) -> None:
    """Record `sha256` as the digest of `path`, in ``<path>.sha256`` (``sha256sum -c`` reads it)."""
    atomic_write_text(path.with_name(path.name + DIGEST_SUFFIX), f"{sha256}  {path.name}\n")


def recorded_digest(path: Path) -> str | None:
    """The sha256 recorded for `path` (`record_digest`), or None without a record."""
    record = path.with_name(path.name + DIGEST_SUFFIX)
    try:
        digest = record.read_text().split(maxsplit=1)[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return digest.lower() if len(digest) == 64 else None


def by_hand(url: str, target: Path) -> str:
    """How to fetch a file by hand, for error messages."""
    return f"fetch it by hand with: curl -L -o {target} {url}"


def _progress_bar(total: int | None, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled, file=sys.stderr
    )
