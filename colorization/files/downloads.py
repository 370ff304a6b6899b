"""Official weight files by name: a table of release files, a cache folder, and a checked downloader.

``--model eccv16`` (or ``model.weights=eccv16``) means the file registered under that name. It is
looked up in the cache (``$COLORIZATION_CACHE``, default ``~/.cache/bw-colorization``) and, when
missing, downloaded once: to a temporary file in the cache, checked (size, and the sha256 prefix
the release's file name carries, torch.hub's convention), then renamed. A failed or partial
download leaves nothing behind and says how to fetch the file by hand. Offline (``offline=True``
or ``COLORIZATION_OFFLINE=1``) nothing is ever fetched.

Families register their own files (`register_release_file`) in the module that defines them.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from colorization.errors import ConfigError, DataError
from colorization.files.atomic import atomic_write, remove_partial_files

CACHE_ENV = "COLORIZATION_CACHE"
OFFLINE_ENV = "COLORIZATION_OFFLINE"
DEFAULT_CACHE = Path("~/.cache/bw-colorization")
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30.0
"""Seconds without a byte from the server before a download is given up."""


@dataclass(frozen=True)
class ReleaseFile:
    """A published weight file: `name` users type, where it is, and how to check it."""

    name: str
    url: str
    filename: str
    sha256_prefix: str
    """The start of the file's sha256 (hex), as its release name carries it."""
    size: int | None = None
    """Bytes, when known."""
    description: str = ""


RELEASE_FILES: dict[str, ReleaseFile] = {}


def register_release_file(release: ReleaseFile) -> None:
    """Make `release.name` resolvable; a name is registered once."""
    known = RELEASE_FILES.get(release.name)
    if known is not None and known != release:
        raise ValueError(f"release name {release.name!r} is already registered for {known.url}")
    RELEASE_FILES[release.name] = release


def release_files() -> dict[str, ReleaseFile]:
    """Every registered release file (each model family registers its own on import)."""
    import colorization.modules  # noqa: F401  (the families' modules register their files)

    return RELEASE_FILES


def cache_dir() -> Path:
    """Where downloaded weights live: ``$COLORIZATION_CACHE`` or ``~/.cache/bw-colorization``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def is_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def weights_path(name_or_path: str | Path) -> Path:
    """`name_or_path` as a path: a registered release name (that is not also a file) becomes its cached
    file, downloaded if missing; anything else is returned as it is, for the caller to check."""
    if isinstance(name_or_path, str) and name_or_path in release_files() and not Path(name_or_path).is_file():
        return resolve_weights(name_or_path)
    return Path(name_or_path)


def resolve_weights(name_or_path: str | Path, offline: bool = False, progress: bool = True) -> Path:
    """The file meant by `name_or_path`: an existing path as it is, or a registered release name's cached file.

    A release missing from the cache is downloaded (unless offline). Anything else raises a
    `ConfigError` listing the known names.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    releases = release_files()
    release = releases.get(str(name_or_path))
    if release is None:
        if path.suffix or os.sep in str(name_or_path):
            raise DataError(f"{name_or_path}: file not found")
        raise ConfigError(
            f"model {str(name_or_path)!r} is neither a file nor a known release name; expected a path or one of "
            f"{sorted(releases)}"
        )
    target = cache_dir() / release.filename
    if target.is_file():
        return target
    if offline or is_offline():
        raise DataError(
            f"{target}: the {release.name!r} weights are not in the cache and downloads are off; "
            f"{_by_hand(release, target)}"
        )
    download(release, target, progress=progress)
    return target


def download(release: ReleaseFile, target: Path, progress: bool = True) -> None:
    """Fetch `release` to `target` atomically (`colorization.files.atomic`), checking size and sha256 prefix."""
    remove_partial_files(target.parent)  # what killed downloads left in the cache

    def fetch(temporary: Path) -> None:
        # a failed check raises, so that nothing is kept
        digest = hashlib.sha256()
        received = 0
        with urllib.request.urlopen(release.url, timeout=TIMEOUT_S) as response, temporary.open("wb") as file:
            announced = response.headers.get("Content-Length")
            total = int(announced) if announced and announced.isdigit() else release.size
            with _progress_bar(total, release.filename, progress) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    file.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        expected = release.size if release.size is not None else total
        if expected is not None and received != expected:
            raise DataError(f"got {received} of {expected} bytes")
        if not digest.hexdigest().startswith(release.sha256_prefix):
            raise DataError(f"sha256 {digest.hexdigest()[:16]}... does not start with {release.sha256_prefix}")

    try:
        atomic_write(target, fetch)
    except (urllib.error.URLError, http.client.HTTPException, OSError, DataError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataError(
            f"{release.url}: downloading the {release.name!r} weights failed ({reason}); {_by_hand(release, target)}"
        ) from None


def _by_hand(release: ReleaseFile, target: Path) -> str:
    return f"fetch it by hand with: curl -L -o {target} {release.url}"


def _progress_bar(total: int | None, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled, file=sys.stderr
    )
