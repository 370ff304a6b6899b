"""The evaluation harness behind `evaluate.py`: score colorizers and reference rows on one data split.

Every source (a training checkpoint of any family, or a weight file `load_colorizer` recognises)
colorizes the same images at its native resolution with the full-resolution L re-attached
(`ColorizerModule.colorize_full`); the reference rows ``gray`` (a = b = 0) and ``ground truth``
are scored by the same metric objects (`colorization.metrics.FULL_METRICS`). Results go to a run
directory that must not already hold results: ``results.md``, ``results.csv``, ``results.json``
and ``comparison.png``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import DataLoader

from colorization.checkpoints import load_colorizer
from colorization.data import LabArraysDataModule, LabCropDataset
from colorization.data.batches import to_lab_batch
from colorization.errors import ConfigError, DataError, check_choice
from colorization.instantiate import instantiate
from colorization.loggers import log_image
from colorization.metrics import FULL_METRICS, SSIM_WINDOW, colorization_metrics
from colorization.modules.base import ColorizerModule
from colorization.training import finish_wandb, instantiate_all
from colorization.visualize import gray_lab, sample_sheet, save_png

log = logging.getLogger(__name__)

GRAY, GROUND_TRUTH = "gray", "ground truth"
SPLITS = ("train", "val", "test")
OUTPUT_FILES = ("results.md", "results.csv", "results.json", "comparison.png")
INFO_COLUMNS = ("model", "checkpoint", "data", "split", "images", "image_size")
SPEED_COLUMN = "images_per_s"
# how each metric is shown in results.md: header (unit, better direction) and number format
MARKDOWN_METRICS = {
    "mse": ("MSE ↓", "{:.4f}"),
    "psnr": ("PSNR dB ↑", "{:.2f}"),
    "ssim": ("SSIM ↑", "{:.4f}"),
    "cie76": ("CIE76 ΔE ↓", "{:.2f}"),
    "ciede2000": ("CIEDE2000 ↓", "{:.2f}"),
    "auc_ab": ("AuC ab ↑", "{:.4f}"),
    "colorfulness": ("CF", "{:.2f}"),
    "delta_cf": ("ΔCF ↓", "{:.2f}"),
}
HEADER_HEIGHT = 14
"""Pixels of the name strip above each column of comparison.png."""


@dataclass
class Source:
    """One row of the table: a loaded colorizer, or a reference row (``model is None``)."""

    name: str
    checkpoint: str
    model: ColorizerModule | None = None


def parse_checkpoints(checkpoints: Sequence[str] | Mapping[str, str] | None) -> list[tuple[str | None, str]]:
    """``checkpoints`` as (row name or None, path) pairs: a list of paths, or a mapping name -> path."""
    if not checkpoints:
        return []
    if isinstance(checkpoints, str):
        raise ConfigError(f"checkpoints={checkpoints!r} must be a list of paths or a mapping name -> path")
    if isinstance(checkpoints, Mapping):
        pairs = []
        for name, path in checkpoints.items():
            if path in (None, "", "???"):
                raise ConfigError(f"checkpoints.{name} is not set; expected the path of a checkpoint or weight file")
            pairs.append((str(name), str(path)))
        return pairs
    return [(None, str(path)) for path in checkpoints]


def default_name(model: ColorizerModule) -> str:
    """A row name from the model itself: its network's class (or the module's) and colour space."""
    config = model.model_config or {}
    net = config.get("net")
    target = net.get("_target_") if isinstance(net, Mapping) else None
    return f"{target.rsplit('.', 1)[-1] if target else type(model).__name__} ({model.colorspace.name})"


def load_sources(checkpoints: Any, device: torch.device) -> list[Source]:
    """Load every checkpoint (errors name the file) and give each row a unique name."""
    sources: list[Source] = []
    taken = {GRAY, GROUND_TRUTH}
    for name, path in parse_checkpoints(checkpoints):
        if name in taken:
            raise ConfigError(f"checkpoints.{name}: the row name {name!r} is already used")
        model = load_colorizer(path, map_location="cpu").to(device).eval()
        if name is None:
            base = name = default_name(model)
            number = 2
            while name in taken:
                name, number = f"{base} #{number}", number + 1
        taken.add(name)
        sources.append(Source(name=name, checkpoint=path, model=model))
    return sources


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else must exist on this machine."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} needs a CUDA GPU, but none is available; use device=cpu or device=auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device={device!r} is not a device; expected auto, cpu, cuda or cuda:<index>") from None


def split_dataset(datamodule: LabArraysDataModule, split: str, crop_size: int | None) -> LabCropDataset:
    """Centre crops of `crop_size` (None: the whole image) of one split; errors if it is empty."""
    check_choice("split", split, SPLITS)
    datamodule.prepare_data()
    datamodule.setup("test")
    arrays = datamodule.arrays
    indices = getattr(datamodule.split, split)
    if len(indices) == 0:
        raise DataError(
            f"{arrays.root}: the {split!r} split holds no images ({len(arrays)} images in {len(arrays.ab_counts)} "
            "ab file(s); the test split is the last ab file unless data.test_start says otherwise)"
        )
    largest = min(arrays.image_size)
    if crop_size is not None and not 1 <= crop_size <= largest:
        raise ConfigError(
            f"crop_size={crop_size} does not fit the {arrays.image_size} images; expected 1..{largest} or null"
        )
    return LabCropDataset(arrays, indices, crop_size or largest, train=False)


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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()  # not inference_mode: its tensors defeat the metrics' sRGB memo (`metrics.srgb`)
def score(
    sources: list[Source], loader: DataLoader, device: torch.device, split: str, keep: int
) -> tuple[dict[str, dict[str, float]], dict[str, float], list[Tensor]]:
    """Metrics per row name, images/s per model, and the first `keep` images of every row (Lab, CPU).

    Rows are ``gray``, each source, ``ground truth``. Each batch is read once and given to every
    model; the first batch is run once untimed (`check_fit`, and a warm-up) before timing.
    """
    rows = [Source(GRAY, ""), *sources, Source(GROUND_TRUTH, "")]
    metrics = {row.name: colorization_metrics("", full=True).to(device) for row in rows}
    seconds = {source.name: 0.0 for source in sources}
    kept: dict[str, list[Tensor]] = {row.name: [] for row in rows}
    n_kept = 0
    for batch_index, batch in enumerate(loader):
        batch = to_lab_batch({key: value.to(device, non_blocking=True) for key, value in batch.items()})
        l = batch["l"]
        target = torch.cat([l, batch["ab"]], dim=1)
        if batch_index == 0:
            check_fit(sources, l, split)
        for row in rows:
            if row.name == GRAY:
                prediction = gray_lab(l)
            elif row.name == GROUND_TRUTH:
                prediction = target
            else:
                _synchronize(device)
                start = time.perf_counter()
                prediction = row.model.colorize_full(l)
                _synchronize(device)
                seconds[row.name] += time.perf_counter() - start
            metrics[row.name].update(prediction, target)
            if n_kept < keep:
                kept[row.name].append(prediction[: keep - n_kept].float().cpu())
        n_kept = min(keep, n_kept + l.shape[0])
    images = len(loader.dataset)
    values = {name: {key: float(v) for key, v in collection.compute().items()} for name, collection in metrics.items()}
    speed = {name: images / max(total, 1e-12) for name, total in seconds.items()}
    return values, speed, [torch.cat(kept[row.name]) for row in rows]


def comparison_sheet(columns: list[Tensor], names: list[str]) -> np.ndarray:
    """`sample_sheet` of the columns with each column's name written above it; (H', W', 3) uint8."""
    sheet = sample_sheet(columns)
    width = columns[0].shape[-1]
    header = Image.new("RGB", (sheet.shape[1], HEADER_HEIGHT), "white")
    draw = ImageDraw.Draw(header)
    for k, name in enumerate(names):
        # narrow images get a shortened name (the column order is the table's row order)
        while len(name) > 1 and draw.textlength(name) > width - 4:
            name = name[:-1]
        draw.text((k * width + 2, 1), name, fill="black")
    return np.concatenate([np.asarray(header), sheet], axis=0)


def hydra_command() -> str | None:
    """The command line that made this run (``python evaluate.py <overrides>``), None outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return " ".join(["python evaluate.py", *(shlex.quote(o) for o in HydraConfig.get().overrides.task)])


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


def _json_number(value: Any) -> Any:
    """Non-finite floats (the ground truth's PSNR is +inf) become null: JSON has no infinity."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _markdown_number(value: float | None, fmt: str) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return fmt.format(value)


def write_results(
    rows: list[dict[str, Any]], reported: list[str], output_dir: Path, sheet: np.ndarray, command: str | None = None
) -> list[Path]:
    """Write results.json/.csv/.md and comparison.png into `output_dir` (which holds none of them yet).

    `command`, when given, is quoted at the end of results.md so the table can be re-made.
    """
    columns = [*INFO_COLUMNS, *FULL_METRICS, SPEED_COLUMN, *reported]
    paths = [output_dir / name for name in OUTPUT_FILES]
    md_path, csv_path, json_path, png_path = paths
    json_rows = [{key: _json_number(row.get(key)) for key in columns} for row in rows]
    json_path.write_text(json.dumps(json_rows, indent=2, allow_nan=False) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({key: row.get(key) for key in columns} for row in rows)

    first = rows[0]
    headers = ["model", *(header for header, _ in MARKDOWN_METRICS.values()), "images/s", *reported]
    lines = [
        "# Evaluation",
        "",
        f"{first['images']} images ({first['image_size']} px, centre crops) of the `{first['split']}` split of "
        f"`{first['data']}`; predictions at each model's native resolution with the full-resolution L re-attached.",
        "",
        "| " + " | ".join(headers) + " |",
        "|---" * len(headers) + "|",
    ]
    for row in rows:
        cells = [row["model"], *(_markdown_number(row[key], fmt) for key, (_, fmt) in MARKDOWN_METRICS.items())]
        cells.append(_markdown_number(row[SPEED_COLUMN], "{:.1f}"))
        cells.extend(_markdown_number(row.get(name), "{:g}") for name in reported)
        lines.append("| " + " | ".join(cells) + " |")
    checkpoints = [f"- {row['model']}: `{row['checkpoint']}`" for row in rows if row["checkpoint"]]
    if checkpoints:
        lines += ["", "Checkpoints:", "", *checkpoints]
    if command:
        lines += ["", f"Made by `{command}`."]
    md_path.write_text("\n".join(lines) + "\n")
    save_png(sheet, png_path)
    return paths


def log_results(loggers: list, rows: list[dict[str, Any]], sheet: np.ndarray) -> None:
    """Send the results to the configured Lightning loggers through their generic API.

    Every logger gets ``eval/<model>/<metric>`` scalars (`log_metrics`); loggers that can show
    tables (W&B's `log_table`) get the table, and those that can show images (`loggers.log_image`:
    W&B, TensorBoard) get comparison.png.
    """
    for logger in loggers:
        for row in rows:
            scalars = {f"eval/{row['model']}/{key}": row[key] for key in [*FULL_METRICS, SPEED_COLUMN]}
            logger.log_metrics({k: v for k, v in scalars.items() if v is not None and math.isfinite(v)}, step=0)
        if hasattr(logger, "log_table"):
            columns = [*INFO_COLUMNS, *FULL_METRICS, SPEED_COLUMN]
            logger.log_table(key="eval/results", columns=columns, data=[[row[c] for c in columns] for row in rows])
    log_image(loggers, "eval/comparison", sheet, step=0)
    for logger in loggers:
        logger.finalize("success")
    # W&B keeps its run open until finished; close it so that multiruns log one run per job
    finish_wandb()


def evaluate(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run one evaluation job (see `conf/evaluate.yaml`); returns the table's rows."""
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
    sources = load_sources(checkpoints, device)
    datamodule: LabArraysDataModule = instantiate(cfg.data)
    dataset = split_dataset(datamodule, split, cfg.get("crop_size"))
    loader = DataLoader(
        dataset,
        batch_size=datamodule.eval_batch_size,
        shuffle=False,
        num_workers=datamodule.num_workers,
        pin_memory=datamodule.pin_memory and device.type == "cuda",
    )
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
    written = write_results(rows, list(reported), output_dir, sheet, hydra_command())
    log_results(loggers, rows, sheet)
    log.info("results: %s", ", ".join(os.fspath(p) for p in written))
    return rows
