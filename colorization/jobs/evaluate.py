"""The evaluation harness behind `evaluate.py`: score colorizers and reference rows on one data split.

Every source (`colorization.inference.sources`: a training checkpoint of any family, or a release weight
file) colorizes the same images at its native resolution with the full-resolution L re-attached
(`ColorizerModule.colorize_full`); the reference rows ``gray`` (a = b = 0) and ``ground truth``
are scored by the same metric objects (`colorization.metrics.image.FULL_METRICS`). Results go to a run
directory that must not already hold results (`colorization.jobs.eval_results.OUTPUT_FILES`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from colorization.errors import ConfigError, check_choice, check_int
from colorization.inference.runtime import prepare_for_inference, resolve_device, resolve_precision
from colorization.inference.sources import load_sources
from colorization.instantiate import instantiate, instantiate_all
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
from colorization.jobs.scoring import GRAY, GROUND_TRUTH, score, spread_positions
from colorization.jobs.threads import set_num_threads
from colorization.metrics.fid import load_fid_inception

log = logging.getLogger(__name__)

MAX_COMPARISON_IMAGES = 64
"""Rows of the comparison sheet at most: a sheet is for looking at, the table holds every image."""


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
