"""The evaluation harness behind `evaluate.py`: score colorizers and reference rows on one data split.

Every source (`colorization.inference.sources`: a training checkpoint of any family, or a release weight
file) colorizes the same images at its native resolution with the full-resolution L re-attached
(`ColorizerModule.colorize_full`); the reference rows ``gray`` (a = b = 0) and ``ground truth``
are scored by the same metric objects (`colorization.metrics.image.FULL_METRICS`). Results go to a run
directory that must not already hold results (`colorization.jobs.eval_results.OUTPUT_FILES`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader
from torchmetrics import Metric

from colorization.data.batches import to_lab_batch
from colorization.errors import ConfigError, DataError, check_choice, check_int
from colorization.inference.runtime import prepare_for_inference, resolve_device, resolve_precision
from colorization.inference.sources import Source, load_sources
from colorization.instantiate import instantiate, instantiate_all
from colorization.jobs.devices import Timer
from colorization.jobs.eval_results import (
    OUTPUT_FILES,
    SHEET_FORMATS,
    SPEED_COLUMN,
    comparison_sheet,
    log_results,
    print_results,
    write_results,
)
from colorization.jobs.run_dirs import display_path
from colorization.jobs.sheets import gray_lab
from colorization.jobs.threads import set_num_threads
from colorization.metrics.fid import FID, load_fid_inception
from colorization.metrics.image import SSIM_WINDOW, colorization_metrics, srgb
from colorization.networks.inception import FIDInceptionV3

log = logging.getLogger(__name__)

GRAY, GROUND_TRUTH = "gray", "ground truth"
MAX_COMPARISON_IMAGES = 64
"""Rows of the comparison sheet at most: a sheet is for looking at, the table holds every image."""


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


@torch.inference_mode()
def score(
    sources: list[Source],
    loader: DataLoader,
    device: torch.device,
    split: str,
    keep: Sequence[int] = (),
    precision: str = "fp32",
    fid_net: FIDInceptionV3 | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float], list[Tensor]]:
    """Metrics per row name, images/s per model, and the images at positions `keep` of the split
    for every row (Lab, CPU, in the order of `keep`).

    Rows are ``gray``, each source, ``ground truth``. Each batch is read once and given to every
    model (in `precision`, see `colorization.inference.runtime`); a model that cannot colorize the first
    batch stops the evaluation there with one line (`colorize_checked`). The first batch also warms
    the models up, so the speed column times the batches after it (all of them if there is one).
    The metrics accumulate in float64 from float32 predictions whatever the precision. With
    `fid_net`, every row also gets FID against the ground truth.
    """
    rows = [Source(GRAY, ""), *sources, Source(GROUND_TRUTH, "")]

    def row_metrics() -> Metric:
        extra = {"fid": FID(fid_net)} if fid_net is not None else None
        return colorization_metrics("", full=True, extra=extra).to(device)

    metrics = {row.name: row_metrics() for row in rows}
    timers = {source.name: Timer() for source in sources}
    warmup_timers = {source.name: Timer() for source in sources}
    kept: dict[str, list[Tensor]] = {row.name: [] for row in rows}
    wanted = sorted(set(keep))
    start = 0  # position of the batch's first image in the split
    first_batch_images = 0
    for batch_index, batch in enumerate(loader):
        batch = to_lab_batch({key: value.to(device, non_blocking=True) for key, value in batch.items()})
        l = batch["l"]
        target = torch.cat([l, batch["ab"]], dim=1)
        target_rgb = srgb(target)  # once for every row's metrics
        predictions = {GRAY: gray_lab(l), GROUND_TRUTH: target}
        for source in sources:
            with (warmup_timers if batch_index == 0 else timers)[source.name].timed(device):
                predictions[source.name] = colorize_checked(source, l, split, precision)
        if batch_index == 0:  # the models fit these images (checked above); so must the metrics
            check_metric_size(l, split)
            first_batch_images = l.shape[0]
        here = [i - start for i in wanted if start <= i < start + l.shape[0]]  # kept images in this batch
        for row in rows:
            prediction = predictions[row.name]
            metrics[row.name].update(prediction, target, target_rgb=target_rgb)
            if here:
                kept[row.name].append(prediction[here].float().cpu())
        start += l.shape[0]
    images = len(loader.dataset)
    values = {name: {key: float(v) for key, v in collection.compute().items()} for name, collection in metrics.items()}
    timed = images - first_batch_images
    speed = {
        name: timed / max(timers[name].seconds, 1e-12) if timed else images / max(warmup_timers[name].seconds, 1e-12)
        for name in timers
    }
    order = [wanted.index(i) for i in keep]
    return values, speed, [torch.cat(kept[row.name])[order] for row in rows]


def spread_positions(count: int, wanted: int) -> list[int]:
    """`wanted` positions spread evenly over a split of `count` images, first and last included
    (so the comparison shows the split's variety, not neighbouring crops of one photo)."""
    wanted = max(0, min(wanted, count))
    if wanted <= 1:
        return list(range(wanted))
    return sorted({round(k * (count - 1) / (wanted - 1)) for k in range(wanted)})


def _plain(value: Any) -> Any:
    """An OmegaConf list/dict as plain Python containers (anything else unchanged)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def evaluate(cfg: DictConfig, command: str | None = None) -> list[dict[str, Any]]:
    """Run one evaluation job (see `conf/evaluate.yaml`); returns the table's rows.

    `command`, the command line that made the run, is quoted in results.md so the table can be re-made.
    """
    output_dir = Path(cfg.paths.output_dir)
    existing = [str(output_dir / name) for name in OUTPUT_FILES if (output_dir / name).exists()]
    if existing:
        raise ConfigError(f"paths.output_dir={str(output_dir)!r} already holds {existing}; refusing to overwrite them")
    device = resolve_device(str(cfg.get("device", "auto")))
    precision = resolve_precision(cfg.get("precision"), device)
    split = str(cfg.split)
    comparison_images = check_int("comparison_images", cfg.get("comparison_images", 8), 1, MAX_COMPARISON_IMAGES)
    sheet_format = str(check_choice("comparison_format", cfg.get("comparison_format", "jpg"), SHEET_FORMATS))
    tile = cfg.get("comparison_tile")
    if tile is not None:
        check_int("comparison_tile", tile, 8, 4096)
    checkpoints = _plain(cfg.get("checkpoints"))
    reported = _plain(cfg.get("reported")) or {}
    if not isinstance(reported, Mapping) or not all(isinstance(v, Mapping) for v in reported.values()):
        raise ConfigError(f"reported={reported!r} must map column names to {{row name: value}} mappings")

    # every user error (a file, a split, a name) is found before any model runs
    sources = load_sources(checkpoints, device, reserved=(GRAY, GROUND_TRUTH))
    channels_last, compile_ = bool(cfg.get("channels_last")), bool(cfg.get("compile"))
    for source in sources:
        prepare_for_inference(source.model, channels_last=channels_last, compile=compile_)
    fid_weights = (cfg.get("fid") or {}).get("weights")
    fid_net = load_fid_inception(fid_weights).to(device) if fid_weights not in (None, "", "???") else None
    datamodule = instantiate(cfg.data, key="data")
    loader = datamodule.eval_dataloader(split, cfg.get("crop_size"), pin_memory=device.type == "cuda")
    dataset = loader.dataset
    # a folder DataModule given one folder per split has no root; it describes its folders itself
    data = display_path(datamodule.root) if datamodule.root is not None else datamodule.description
    protocol = getattr(datamodule, "protocol", None)
    loggers = instantiate_all(cfg.get("logger"))
    threads = set_num_threads(cfg.get("num_threads"), loader.num_workers, key="num_threads")
    log.info(
        "evaluating %d model(s) on %d %s images of %s (%s, %d thread(s))",
        *(len(sources), len(dataset), split, data, precision, threads),
    )

    keep = spread_positions(len(dataset), comparison_images)
    values, speed, kept = score(sources, loader, device, split, keep=keep, precision=precision, fid_net=fid_net)
    names = [GRAY, *(s.name for s in sources), GROUND_TRUTH]
    checkpoint_of = {s.name: display_path(s.checkpoint) for s in sources}
    rows = [
        {
            "model": name,
            "checkpoint": checkpoint_of.get(name, ""),
            "data": data,
            "protocol": protocol.description if protocol is not None else "",
            "split": split,
            "images": len(dataset),
            "image_size": f"{dataset.crop_size}x{dataset.crop_size}",
            **values[name],
            SPEED_COLUMN: speed.get(name),
            **{column: by_row.get(name) for column, by_row in reported.items()},
        }
        for name in names
    ]
    output_dir.mkdir(parents=True, exist_ok=True)
    sheet = comparison_sheet(kept, names, tile)
    written = write_results(rows, list(reported), output_dir, sheet, command, sheet_format)
    log_results(loggers, rows, sheet)
    print_results(rows, list(reported), written)
    return rows
