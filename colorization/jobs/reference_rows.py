"""The reference rows of an evaluation (``gray`` and ``ground truth``), kept from one evaluation to the next.

Neither row depends on the model, yet on a small model each costs as much metric time as the model's
own row. They are cached per split and protocol in the user's cache folder
(`colorization.files.downloads.cache_dir`, ``$COLORIZATION_CACHE``), one small JSON file per entry:

- the file is found by what selects and scores the images (`ReferenceKey`: the data, split, crop size,
  protocol, image count, batch size and device type);
- it holds the version of the metric code (`metric_code_version`: the source of the modules that compute
  the numbers, and the versions of torch and kornia) and the content digest of the split (`ContentDigest`:
  sha256 of every uint8 batch exactly as the loader yields it). The scoring loop computes the digest as it
  reads the batches; the cached rows count only when both agree, otherwise they are computed afresh and
  the entry is rewritten. A changed image under the same name, or changed metric code, so never serves
  stale rows.

Entries are written with the project's atomic writer and read as plain JSON (nothing is unpickled); the
numbers are stored as ``float.hex`` strings, so cached rows equal fresh ones bit for bit, infinities
(the ground truth's PSNR) included.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from colorization.files.atomic import atomic_write_json
from colorization.files.downloads import cache_dir

log = logging.getLogger(__name__)

CACHE_FOLDER = "reference_rows"
"""The entries' folder inside the user's cache folder."""
ENTRY_FORMAT = 1
"""The layout of an entry file; an entry of another layout is a miss."""
METRIC_CODE = (
    "colorization.metrics.image",
    "colorization.color.spaces",
    "colorization.data.batches",
    "colorization.jobs.scoring",
)
"""Modules whose source decides the reference rows' numbers: the metrics, the Lab/sRGB conversions, the
uint8 -> float Lab of batches and the scoring loop."""
LIBRARIES = ("torch", "kornia")

Rows = dict[str, dict[str, float]]
"""Metric values by row name, then by metric key."""


def metric_code_version() -> str:
    """sha256 (hex) of the source of `METRIC_CODE` and the versions of `LIBRARIES`: changes whenever the
    code that computes the reference rows does."""
    digest = hashlib.sha256()
    for name in METRIC_CODE:
        digest.update(Path(inspect.getsourcefile(importlib.import_module(name))).read_bytes())
    for name in LIBRARIES:
        digest.update(f"{name}=={importlib.import_module(name).__version__}".encode())
    return digest.hexdigest()


class ContentDigest:
    """sha256 of a split's batches as a loader yields them: every uint8 tensor, with its key and shape."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def update(self, batch: dict[str, Tensor]) -> None:
        """Add one batch (before it goes to the device): its uint8 images; other entries (indices) are positions."""
        for key in sorted(batch):
            value = batch[key]
            if isinstance(value, Tensor) and value.dtype == torch.uint8:
                self._digest.update(f"{key}{tuple(value.shape)}".encode())
                self._digest.update(value.contiguous().numpy())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class ReferenceKey:
    """What selects and scores the images of one evaluation; the file name of its entry hashes it."""

    data: str
    """The data's root (absolute) or, without one, its description."""
    split: str
    crop_size: int
    protocol: str
    images: int
    batch_size: int
    device: str
    """The device type: the same arithmetic on another device rounds differently."""

    def path(self) -> Path:
        """The entry's file: ``<cache>/reference_rows/<sha256 of this key>.json``."""
        name = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()
        return cache_dir() / CACHE_FOLDER / f"{name}.json"


@dataclass(frozen=True)
class CachedRows:
    """An entry: the reference rows scored on the split whose content digest is `content`."""

    rows: Rows
    content: str


def load_rows(key: ReferenceKey) -> CachedRows | None:
    """The entry of `key` if it was written by this metric code for this key; None otherwise (no entry, another
    key or code version, or a file that is not a whole entry)."""
    path = key.path()
    try:
        entry = json.loads(path.read_text())
        if (
            entry["format"] != ENTRY_FORMAT
            or entry["key"] != asdict(key)
            or entry["metric_code"] != metric_code_version()
        ):
            return None
        rows = {
            row: {metric: float.fromhex(value) for metric, value in values.items()}
            for row, values in entry["rows"].items()
        }
        return CachedRows(rows=rows, content=str(entry["content"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("%s: not a reference-rows entry (%s); scoring the reference rows again", path, error)
        return None


def store_rows(key: ReferenceKey, cached: CachedRows) -> Path:
    """Write the entry of `key` atomically (`colorization.files.atomic`), replacing any older one."""
    rows = {
        row: {metric: float(value).hex() for metric, value in values.items()} for row, values in cached.rows.items()
    }
    entry = {
        "format": ENTRY_FORMAT,
        "key": asdict(key),
        "metric_code": metric_code_version(),
        "content": cached.content,
        "rows": rows,
    }
    return atomic_write_json(key.path(), entry)
