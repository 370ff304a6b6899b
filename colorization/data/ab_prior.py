"""The empirical ab-bin distribution of a training set, computed once and cached beside the data.

Class rebalancing (`colorization.color.ab_bins.rebalancing_weights`) needs how often each bin occurs in
the training images. For Kaggle-layout arrays this counts every pixel of every training image (not
random crops, so the result is exact and reproducible) and stores the counts in
``<data root>/priors/ab-counts-<key>.npy``; the key hashes the bin centres, the training indices
and the ab files' names, sizes and modification times, so any change recomputes them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from colorization.data.batches import to_lab_batch
from colorization.data.lab_arrays import LabArrays
from colorization.files.atomic import atomic_write, remove_partial_files

log = logging.getLogger(__name__)

PRIOR_DIR = "priors"


def cache_key(arrays: LabArrays, indices: np.ndarray, centres: Tensor) -> str:
    """16 hex digits identifying (bin centres, training images, ab files)."""
    digest = hashlib.sha256()
    digest.update(centres.detach().cpu().float().numpy().tobytes())
    digest.update(np.asarray(indices, dtype=np.int64).tobytes())
    for path in arrays.ab_paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def count_bins_in_arrays(arrays: LabArrays, indices: np.ndarray, lookup: Tensor) -> np.ndarray:
    """(Q,) int64 pixel counts per bin over the full images `indices`; `lookup` maps uint8 (a, b) to a bin."""
    table = lookup.numpy()
    counts = np.zeros(int(table.max()) + 1, dtype=np.int64)
    for index in indices:
        _, ab_cv = arrays.read(int(index))
        counts += np.bincount(table[ab_cv[..., 0], ab_cv[..., 1]].ravel(), minlength=counts.size)
    return counts


def count_bins_in_batches(
    batches: Iterable[dict], encode_hard: Callable[[Tensor], Tensor], num_bins: int
) -> np.ndarray:
    """(Q,) int64 pixel counts per bin over the ``ab`` of every (uint8 or Lab) batch, for data without Lab arrays."""
    counts = torch.zeros(num_bins, dtype=torch.int64)
    for batch in batches:
        counts += torch.bincount(encode_hard(to_lab_batch(batch)["ab"]).flatten().cpu(), minlength=num_bins)
    return counts.numpy()


def cached_bin_counts(arrays: LabArrays, indices: np.ndarray, centres: Tensor, lookup: Tensor) -> np.ndarray:
    """Bin counts of the training images, read from the cache or computed and cached (atomically)."""
    path = arrays.root / PRIOR_DIR / f"ab-counts-{cache_key(arrays, indices, centres)}.npy"
    if path.is_file():
        counts = np.load(path)
        if counts.shape == (centres.shape[0],):
            return counts
    log.info("counting ab bins over %d training images (cached in %s)", len(indices), path)
    counts = count_bins_in_arrays(arrays, indices, lookup)
    counts = np.pad(counts, (0, centres.shape[0] - counts.size))
    try:
        remove_partial_files(path.parent)  # what a killed run left
        atomic_write(path, lambda temp: _save_npy(temp, counts))
    except OSError as error:  # a read-only data directory: use the counts without caching them
        log.warning("could not cache the ab prior in %s: %s", path.parent, error)
    return counts


def _save_npy(path: Path, array: np.ndarray) -> None:
    # through a file object: given a path, np.save would append ".npy" to the temporary's name
    with path.open("wb") as file:
        np.save(file, array)
