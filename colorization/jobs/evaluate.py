"""The evaluation harness behind `evaluate.py`: score colorizers and reference rows on one data split.

Every source (`colorization.inference.sources`: a training checkpoint of any family, or a release weight
file) colorizes the same images at its native resolution with the full-resolution L re-attached
(`ColorizerModule.colorize_full`); the reference rows ``gray`` (a = b = 0) and ``ground truth``
are scored by the same metric objects (`colorization.metrics.image.FULL_METRICS`). With ``data=video``
the data is a folder of colour films instead, colorized and scored as `colorization.jobs.film_scoring`
says. Results go to a run directory that must not already hold results
(`colorization.jobs.eval_results.OUTPUT_FILES`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader

from colorization.errors import ConfigError, check_choice, check_int
from colorization.inference.runtime import prepare_for_inference, resolve_device, resolve_precision
from colorization.inference.sources import Source, load_sources
from colorization.instantiate import instantiate, instantiate_all
from colorization.jobs.eval_results import (
    MIXED_SIZES,
    OUTPUT_FILES,
    SHEET_FORMATS,
    SPEED_COLUMN,
    comparison_sheet,
    log_results,
    print_results,
    write_results,
)
from colorization.jobs.reference_rows import CachedRows, ReferenceKey, load_rows, store_rows
from colorization.jobs.run_dirs import display_path
from colorization.jobs.scoring import GRAY, GROUND_TRUTH, Scores, score, spread_positions
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
    loggers = instantiate_all(cfg.get("logger"))
    if getattr(datamodule, "films", None) is not None:  # data=video (`colorization.data.films.FilmFolder`)
        if cfg.get("crop_size") is not None or fid_net is not None:
            raise ConfigError("crop_size and fid.weights apply to photos; data=video scores whole films without FID")
        rows, kept = _film_rows(sources, datamodule, device, precision, output_dir, comparison_images, cfg)
    else:
        rows, kept = _photo_rows(sources, datamodule, device, precision, split, comparison_images, fid_net, cfg)
    for row in rows:
        row.update({column: by_row.get(row["model"]) for column, by_row in reported.items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    sheet = comparison_sheet(kept, [row["model"] for row in rows], tile)
    written = write_results(rows, list(reported), output_dir, sheet, command, sheet_format)
    log_results(loggers, rows, sheet)
    print_results(rows, list(reported), written)
    return rows


def _row(name: str, checkpoint: str, values: dict[str, float], speed: float | None, **info: Any) -> dict:
    """One row of the table: its model, checkpoint (empty for the reference rows) and what it was scored on,
    its metrics and speed."""
    checkpoint = display_path(checkpoint) if checkpoint else ""
    return {"model": name, "checkpoint": checkpoint, **info, **values, SPEED_COLUMN: speed}


def _photo_rows(
    sources: list[Source],
    datamodule: Any,
    device: torch.device,
    precision: str,
    split: str,
    comparison_images: int,
    fid_net: Any,
    cfg: DictConfig,
) -> tuple[list[dict[str, Any]], list[Tensor]]:
    """Score the sources on one split of photos; the rows and the comparison sheet's images."""
    loader = datamodule.eval_dataloader(split, cfg.get("crop_size"), pin_memory=device.type == "cuda")
    dataset = loader.dataset
    # a folder DataModule given one folder per split has no root; it describes its folders itself
    data = display_path(datamodule.root) if datamodule.root is not None else datamodule.description
    protocol = getattr(datamodule, "protocol", None)
    threads = set_num_threads(cfg.get("num_threads"), loader.num_workers, key="num_threads")
    log.info(
        "evaluating %d model(s) on %d %s images of %s (%s, %d thread(s))",
        *(len(sources), len(dataset), split, data, precision, threads),
    )
    keep = spread_positions(len(dataset), comparison_images)
    if fid_net is None:
        key = reference_key(datamodule, loader, split, protocol, device)
        scores = score_with_cached_references(sources, loader, device, split, key, keep, precision)
    else:  # FID's reference rows depend on the Inception weights too: with FID every row is scored afresh
        scores = score(sources, loader, device, split, keep=keep, precision=precision, fid_net=fid_net)
    values, speed, kept = scores.values, scores.speed, scores.kept
    info = {
        "data": data,
        "protocol": protocol.description if protocol is not None else "",
        "split": split,
        "images": len(dataset),
        "image_size": f"{dataset.crop_size}x{dataset.crop_size}",
    }
    checkpoints = {GRAY: "", **{s.name: s.checkpoint for s in sources}, GROUND_TRUTH: ""}
    return [_row(name, path, values[name], speed.get(name), **info) for name, path in checkpoints.items()], kept


def score_with_cached_references(
    sources: list[Source],
    loader: DataLoader,
    device: torch.device,
    split: str,
    key: ReferenceKey,
    keep: list[int],
    precision: str,
) -> Scores:
    """`score`, taking the reference rows from their cache entry (`colorization.jobs.reference_rows`) when it
    was written for this content; otherwise they are scored and the entry is (re)written.

    The content is known once the loop has read the split: an entry for other content (an image changed
    since) costs a second pass that scores the reference rows alone.
    """
    cached = load_rows(key)
    scores = score(sources, loader, device, split, keep=keep, precision=precision, references=cached and cached.rows)
    if cached is not None and cached.content == scores.content:
        return scores
    if cached is not None:
        log.info("the %r split's images changed since its reference rows were cached; scoring them again", split)
        scores.values.update(score([], loader, device, split, keep=keep).values)
    store_rows(key, CachedRows({name: scores.values[name] for name in (GRAY, GROUND_TRUTH)}, scores.content))
    return scores


def reference_key(datamodule: Any, loader: DataLoader, split: str, protocol: Any, device: torch.device) -> ReferenceKey:
    """What selects and scores the images of `loader`, for the cache of the reference rows."""
    root = getattr(datamodule, "root", None)
    return ReferenceKey(
        data=str(Path(root).resolve()) if root is not None else datamodule.description,
        split=split,
        crop_size=int(loader.dataset.crop_size),
        protocol=protocol.name if protocol is not None else "",
        images=len(loader.dataset),
        batch_size=int(loader.batch_size),
        device=device.type,
    )


def _film_rows(
    sources: list[Source],
    folder: Any,
    device: torch.device,
    precision: str,
    output_dir: Path,
    comparison_images: int,
    cfg: DictConfig,
) -> tuple[list[dict[str, Any]], list[Tensor]]:
    """Colorize and score a folder of colour films (`colorization.jobs.film_scoring`); the rows, the sheet's frames."""
    from colorization.jobs.film_scoring import film_rows, score_films  # PyAV and OpenCV: only for films

    threads = set_num_threads(cfg.get("num_threads"), 0, key="num_threads")
    data = display_path(folder.root)
    log.info(
        "evaluating %d model(s) on %d films of %s (%s, %d thread(s))",
        *(len(sources), len(folder.films), data, precision, threads),
    )
    scores = score_films(sources, folder, device, precision, output_dir, comparison_images)
    (width, height), *others = sorted(scores.sizes)
    info = {
        "data": data,
        "protocol": "",
        "split": "",
        "images": scores.frames,
        "image_size": f"{width}x{height}" if not others else MIXED_SIZES,
        "films": len(folder.films),
    }
    checkpoints = {GRAY: "", **{row.name: row.source.checkpoint for row in film_rows(sources)}, GROUND_TRUTH: ""}
    rows = [_row(name, checkpoints[name], scores.values[name], scores.speed.get(name), **info) for name in scores.names]
    return rows, scores.kept
