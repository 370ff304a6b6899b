"""Downloading weight files into the cache folder, checked: the one place that fetches from the network.

A download goes to a temporary file in the cache folder, is checked (its size, and the sha256
prefix where one is published) and only then renamed into place, so a failed, partial or wrong
download leaves nothing behind; the error says how to fetch the file by hand. Offline
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
from pathlib import Path

from colorization.errors import DataError
from colorization.files.atomic import atomic_write, remove_partial_files

CACHE_ENV = "COLORIZATION_CACHE"
OFFLINE_ENV = "COLORIZATION_OFFLINE"
DEFAULT_CACHE = Path("~/.cache/bw-colorization")
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0
"""Seconds without a byte from the server before a download is given up."""


def cache_dir() -> Path:
    """The user's cache folder, ``$COLORIZATION_CACHE`` or ``~/.cache/bw-colorization``: downloaded weights,
    and the file lists of read-only photo folders (`colorization.data.image_index`)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def download(
    url: str, target: Path, size: int | None = None, sha256_prefix: str = "", label: str = "", progress: bool = True
) -> None:
    """Fetch `url` to `target` atomically (`colorization.files.atomic`), checking its size (`size`, else the
    announced Content-Length) and sha256 prefix; `label` names the weights in errors. Raises `DataError`."""
    remove_partial_files(target.parent)  # what killed downloads left in the cache

    def fetch(temporary: Path) -> None:
        # a failed check raises, so that nothing is kept
        digest = hashlib.sha256()
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

    try:
        atomic_write(target, fetch)
    except (urllib.error.URLError, http.client.HTTPException, OSError, DataError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataError(
            f"{url}: downloading the {label or target.name!r} weights failed ({reason}); {by_hand(url, target)}"
        ) from None


def by_hand(url: str, target: Path) -> str:
    """How to fetch a file by hand, for error messages."""
    return f"fetch it by hand with: curl -L -o {target} {url}"


def _progress_bar(total: int | None, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled, file=sys.stderr
    )
