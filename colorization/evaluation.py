"""The evaluation harness behind `evaluate.py`: score colorizers and reference rows on one data split.

Every source (`colorization.sources`: a training checkpoint of any family, or a release weight
file) colorizes the same images at its native resolution with the full-resolution L re-attached
(`ColorizerModule.colorize_full`); the reference rows ``gray`` (a = b = 0) and ``ground truth``
are scored by the same metric objects (`colorization.metrics.FULL_METRICS`). Results go to a run
directory that must not already hold results (`colorization.report.OUTPUT_FILES`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader

from colorization.devices import Timer, resolve_device
from colorization.errors import ConfigError, DataError
from colorization.instantiate import instantiate, instantiate_all
from colorization.metrics import SSIM_WINDOW, colorization_metrics
from colorization.report import OUTPUT_FILES, SPEED_COLUMN, comparison_sheet, log_results, write_results
from colorization.sources import Source, load_sources
from colorization.visualize import gray_lab

log = logging.getLogger(__name__)

GRAY, GROUND_TRUTH = "gray", "ground truth"


def colorize_checked(source: Source, l: Tensor, split: str) -> Tensor:
    """Run `source` on L once, turning any failure on these images into a one-line `DataError`."""
    height, width = l.shape[-2:]
    try:
        lab = source.model.colorize_full(l)
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


def check_fit(sources: list[Source], l: Tensor, split: str) -> None:
    """Every model can colorize images of this size, and they are large enough for every metric."""
    for source in sources:
        colorize_checked(source, l, split)
    height, width = l.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise DataError(
            f"the {height}x{width} images of the {split!r} split are smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} "
            "SSIM window; use crop_size >= 11 or larger images"
        )


@torch.no_grad()
def score(
    sources: list[Source], loader: DataLoader, device: torch.device, split: str, keep: int
) -> tuple[dict[str, dict[str, float]], dict[str, float], list[Tensor]]:
    """Metrics per row name, images/s per model, and the first `keep` images of every row (Lab, CPU).

    Rows are ``gray``, each source, ``ground truth``. Each batch is read once and given to every
    model; the first batch is run once untimed (`check_fit`, and a warm-up) before timing.
    """
    rows = [Source(GRAY, ""), *sources, Source(GROUND_TRUTH, "")]
    metrics = {row.name: colorization_metrics("", full=True).to(device) for row in rows}
    timers = {source.name: Timer() for source in sources}
    kept: dict[str, list[Tensor]] = {row.name: [] for row in rows}
    n_kept = 0
    for batch_index, batch in enumerate(loader):
        l = batch["l"].to(device, non_blocking=True)
        target = torch.cat([l, batch["ab"].to(device, non_blocking=True)], dim=1)
        if batch_index == 0:
            check_fit(sources, l, split)
        for row in rows:
            if row.name == GRAY:
                prediction = gray_lab(l)
            elif row.name == GROUND_TRUTH:
                prediction = target
            else:
                with timers[row.name].timed(device):
                    prediction = row.model.colorize_full(l)
            metrics[row.name].update(prediction, target)
            if n_kept < keep:
                kept[row.name].append(prediction[: keep - n_kept].float().cpu())
        n_kept = min(keep, n_kept + l.shape[0])
    images = len(loader.dataset)
    values = {name: {key: float(v) for key, v in collection.compute().items()} for name, collection in metrics.items()}
    speed = {name: images / max(timer.seconds, 1e-12) for name, timer in timers.items()}
    return values, speed, [torch.cat(kept[row.name]) for row in rows]


def _plain(value: Any) -> Any:
    """An OmegaConf list/dict as plain Python containers (anything else unchanged)."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _display_path(path: str | Path) -> str:
    """`path` relative to the working directory when it lies below it (shorter tables)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def evaluate(cfg: DictConfig, command: str | None = None) -> list[dict[str, Any]]:
    """Run one evaluation job (see `conf/evaluate.yaml`); returns the table's rows.

    `command`, the command line that made the run, is quoted in results.md so the table can be re-made.
    """
    output_dir = Path(cfg.paths.output_dir)
    existing = [str(output_dir / name) for name in OUTPUT_FILES if (output_dir / name).exists()]
    if existing:
        raise ConfigError(f"paths.output_dir={str(output_dir)!r} already holds {existing}; refusing to overwrite them")
    device = resolve_device(str(cfg.get("device", "auto")))
    split = str(cfg.split)
    checkpoints = _plain(cfg.get("checkpoints"))
    reported = _plain(cfg.get("reported")) or {}
    if not isinstance(reported, Mapping) or not all(isinstance(v, Mapping) for v in reported.values()):
        raise ConfigError(f"reported={reported!r} must map column names to {{row name: value}} mappings")

    # every user error (a file, a split, a name) is found before any model runs
    sources = load_sources(checkpoints, device, reserved=(GRAY, GROUND_TRUTH))
    datamodule = instantiate(cfg.data, key="data")
    loader = datamodule.eval_dataloader(split, cfg.get("crop_size"), pin_memory=device.type == "cuda")
    dataset = loader.dataset
    loggers = instantiate_all(cfg.get("logger"))
    log.info("evaluating %d model(s) on %d %s images of %s", len(sources), len(dataset), split, datamodule.root)

    values, speed, kept = score(sources, loader, device, split, keep=int(cfg.comparison_images))
    names = [GRAY, *(s.name for s in sources), GROUND_TRUTH]
    checkpoint_of = {s.name: _display_path(s.checkpoint) for s in sources}
    rows = [
        {
            "model": name,
            "checkpoint": checkpoint_of.get(name, ""),
            "data": _display_path(datamodule.root),
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
    sheet = comparison_sheet(kept, names)
    written = write_results(rows, list(reported), output_dir, sheet, command)
    log_results(loggers, rows, sheet)
    log.info("results: %s", ", ".join(os.fspath(p) for p in written))
    return rows
