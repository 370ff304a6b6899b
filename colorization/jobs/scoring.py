"""Scoring colorizers on one data split: every model and the reference rows, by the same metric objects.

Rows are ``gray`` (a = b = 0), each source (`colorization.inference.sources`) run as a user runs it
(`Colorizer.colorize_full`: its native resolution, the full-resolution L re-attached), and ``ground
truth``; all are scored by `colorization.metrics.image.colorization_metrics` (plus FID when asked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import Metric

from colorization.data.batches import to_lab_batch
from colorization.errors import DataError
from colorization.inference.sources import Source
from colorization.jobs.devices import Timer
from colorization.jobs.reference_rows import ContentDigest, Rows
from colorization.metrics.fid import FID
from colorization.metrics.image import SSIM_WINDOW, colorization_metrics, gray_lab, srgb
from colorization.networks.inception import FIDInceptionV3

GRAY, GROUND_TRUTH = "gray", "ground truth"


def colorize_checked(source: Source, l: Tensor, split: str, precision: str = "fp32") -> Tensor:
    """Run `source` on L once, turning any failure on these images into a one-line `DataError`."""
    height, width = l.shape[-2:]
    try:
        lab = source.model.colorize_full(l, precision=precision)
    except (RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{source.checkpoint}: model {source.name!r} cannot colorize the {height}x{width} images of "
            f"the {split!r} split ({first_line}); choose another crop_size or data"
        ) from None
    if tuple(lab.shape) != (l.shape[0], 3, height, width):
        raise DataError(
            f"{source.checkpoint}: model {source.name!r} returned {tuple(lab.shape)} for {height}x{width} images "
            f"of the {split!r} split; expected ({l.shape[0]}, 3, {height}, {width})"
        )
    return lab


def check_metric_size(l: Tensor, split: str) -> None:
    """The images are large enough for every metric (SSIM's window)."""
    height, width = l.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise DataError(
            f"the {height}x{width} images of the {split!r} split are smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} "
            "SSIM window; use crop_size >= 11 or larger images"
        )


@dataclass
class Scores:
    """What `score` measured on one split."""

    values: Rows
    """Metrics by row name (``gray``, each source, ``ground truth``), then by metric key."""
    speed: dict[str, float]
    """Images/s of each source."""
    kept: list[Tensor]
    """The images at the positions asked for, per row in row order: (N, 3, H, W) Lab on the CPU."""
    content: str
    """The split's content digest (`ContentDigest`): what cached reference rows must have been scored on."""


@torch.inference_mode()
def score(
    sources: list[Source],
    loader: DataLoader,
    device: torch.device,
    split: str,
    keep: Sequence[int] = (),
    precision: str = "fp32",
    fid_net: FIDInceptionV3 | None = None,
    references: Rows | None = None,
) -> Scores:
    """Score ``gray``, each source and ``ground truth`` on the split of `loader`; keep the images at positions
    `keep` of the split for every row (in the order of `keep`).

    Each batch is read once and given to every model (in `precision`, see `colorization.inference.runtime`);
    a model that cannot colorize the first batch stops the evaluation there with one line
    (`colorize_checked`). The first batch also warms the models up, so the speed column times the batches
    after it (all of them if there is one). The metrics accumulate in float64 from float32 predictions
    whatever the precision. With `fid_net`, every row also gets FID against the ground truth.

    `references`: the values of the reference rows already known (`colorization.jobs.reference_rows`); their
    metrics are then not computed, and the caller checks `Scores.content` against the digest they were
    scored on.
    """
    rows = [Source(GRAY, ""), *sources, Source(GROUND_TRUTH, "")]
    scored = [row.name for row in rows if references is None or row.name not in references]

    def row_metrics() -> Metric:
        extra = {"fid": FID(fid_net)} if fid_net is not None else None
        return colorization_metrics("", full=True, extra=extra).to(device)

    metrics = {name: row_metrics() for name in scored}
    timers = {source.name: Timer() for source in sources}
    warmup_timers = {source.name: Timer() for source in sources}
    kept: dict[str, list[Tensor]] = {row.name: [] for row in rows}
    wanted = sorted(set(keep))
    content = ContentDigest()
    start = 0  # position of the batch's first image in the split
    first_batch_images = 0
    for batch_index, batch in enumerate(loader):
        content.update(batch)
        batch = to_lab_batch({key: value.to(device, non_blocking=True) for key, value in batch.items()})
        l = batch["l"]
        target = torch.cat([l, batch["ab"]], dim=1)
        target_rgb = srgb(target) if metrics else None  # once for every row's metrics
        predictions = {GRAY: gray_lab(l), GROUND_TRUTH: target}
        for source in sources:
            with (warmup_timers if batch_index == 0 else timers)[source.name].timed(device):
                predictions[source.name] = colorize_checked(source, l, split, precision)
        if batch_index == 0:  # the models fit these images (checked above); so must the metrics
            check_metric_size(l, split)
            first_batch_images = l.shape[0]
        for name, collection in metrics.items():
            collection.update(predictions[name], target, target_rgb=target_rgb)
        here = [i - start for i in wanted if start <= i < start + l.shape[0]]  # kept images in this batch
        if here:
            for row in rows:
                kept[row.name].append(predictions[row.name][here].float().cpu())
        start += l.shape[0]
    images = len(loader.dataset)
    values = {name: {key: float(v) for key, v in collection.compute().items()} for name, collection in metrics.items()}
    values = {row.name: values[row.name] if row.name in values else dict(references[row.name]) for row in rows}
    timed = images - first_batch_images
    speed = {
        name: timed / max(timers[name].seconds, 1e-12) if timed else images / max(warmup_timers[name].seconds, 1e-12)
        for name in timers
    }
    order = [wanted.index(i) for i in keep]
    return Scores(values, speed, [torch.cat(kept[row.name])[order] for row in rows], content.hexdigest())


def spread_positions(count: int, wanted: int) -> list[int]:
    """`wanted` positions spread evenly over a split of `count` images, first and last included
    (so the comparison shows the split's variety, not neighbouring crops of one photo)."""
    wanted = max(0, min(wanted, count))
    if wanted <= 1:
        return list(range(wanted))
    return sorted({round(k * (count - 1) / (wanted - 1)) for k in range(wanted)})
