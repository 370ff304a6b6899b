"""Writing an evaluation's results: the table files, the comparison image, and the loggers."""

from __future__ import annotations

import csv
import math
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch.nn.functional as F
from rich import box
from rich.console import Console
from rich.table import Table
from torch import Tensor

from colorization.errors import check_choice
from colorization.files.atomic import atomic_write, atomic_write_text, remove_partial_files, strict_json
from colorization.jobs.loggers import log_image
from colorization.jobs.run_dirs import display_path
from colorization.jobs.sheets import labelled_sheet, save_image
from colorization.jobs.tracking import finish_wandb
from colorization.metrics.fid import FID_WEIGHTS_NAME, MIN_UNBIASED_IMAGES
from colorization.metrics.image import FULL_METRICS, OPTIONAL_METRICS, metric_header

SHEET_FORMATS = ("jpg", "png")
"""Formats of the comparison sheet: JPEG (small, the default) or lossless PNG."""
OUTPUT_FILES = (
    "results.md",
    "results.csv",
    "results.json",
    *(f"comparison.{fmt}" for fmt in SHEET_FORMATS),
    "films",
)
"""Every file (and the folder of colorized films) an evaluation may write; a run directory holding any of them
is not written to again."""
INFO_COLUMNS = ("model", "checkpoint", "data", "protocol", "split", "images", "image_size")
FILMS_COLUMN = "films"
"""An evaluation of films (``data=video``) also says how many films it scored, after `INFO_COLUMNS`."""
SPEED_COLUMN = "images_per_s"
MIXED_SIZES = "mixed"
"""The ``image_size`` of films that do not share one."""


def comparison_sheet(columns: list[Tensor], names: list[str], tile: int | None = None) -> np.ndarray:
    """The comparison picture: one column per row of the table (`names`), each named above it.

    `columns` are (N, 3, H, W) Lab; `tile` (pixels) shrinks images larger than that (antialiased)
    so the sheet stays small; None keeps them as they are.
    """
    height, width = columns[0].shape[-2:]
    if tile is not None and max(height, width) > tile:
        size = (max(1, round(height * tile / max(height, width))), max(1, round(width * tile / max(height, width))))
        columns = [F.interpolate(c, size=size, mode="bilinear", antialias=True, align_corners=False) for c in columns]
    return labelled_sheet(columns, names)


def _markdown_number(value: float | None, fmt: str) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return fmt.format(value)


def is_films(rows: list[dict[str, Any]]) -> bool:
    """Whether the rows score films (``data=video``) rather than photos."""
    return rows[0].get(FILMS_COLUMN) is not None


def info_columns(rows: list[dict[str, Any]]) -> list[str]:
    """`INFO_COLUMNS`, and `FILMS_COLUMN` for films."""
    return [*INFO_COLUMNS, FILMS_COLUMN] if is_films(rows) else list(INFO_COLUMNS)


def table_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`FULL_METRICS`, then each of `OPTIONAL_METRICS` that the rows hold (e.g. FID with ``fid.weights``), then
    for films the temporal metrics."""
    present = {key: metric for key, metric in OPTIONAL_METRICS.items() if any(row.get(key) is not None for row in rows)}
    if not is_films(rows):
        return {**FULL_METRICS, **present}
    from colorization.metrics.temporal import TEMPORAL_METRICS  # OpenCV: only when there are films

    return {**FULL_METRICS, **present, **TEMPORAL_METRICS}


def _metric_cell(key: str, value: float | None, fmt: str, images: int) -> str:
    # FID depends on the number of images (it is biased upwards on small sets): the count goes beside it
    cell = _markdown_number(value, fmt)
    return f"{cell} (n={images})" if key == "fid" and cell else cell


def fid_note(rows: list[dict[str, Any]]) -> str:
    """The line results.md adds about FID: how to get it, or a warning when the set is small."""
    if not any(row.get("fid") is not None for row in rows):
        return (
            f"FID is not computed: add `fid.weights=/path/to/{FID_WEIGHTS_NAME}` (the Inception weights "
            "pytorch-fid and torch-fidelity use; nothing is downloaded)."
        )
    images = rows[0]["images"]
    if images < MIN_UNBIASED_IMAGES:
        return (
            f"Warning: FID from {images} images; below {MIN_UNBIASED_IMAGES:,} it is biased upwards and depends "
            "on the number of images, so compare FIDs only at equal n."
        )
    return f"FID from {images} images (TensorFlow-compatible InceptionV3, 2048-d pool features)."


def table_cells(rows: list[dict[str, Any]], reported: list[str]) -> tuple[list[str], list[list[str]]]:
    """The results table as text: headers (metric label and better direction) and one list of cells per row."""
    metrics = table_metrics(rows)
    speed = "frames/s" if is_films(rows) else "images/s"  # a film's speed: of the whole pipeline
    headers = ["model", *(metric_header(metric) for metric in metrics.values()), speed, *reported]
    cells = []
    for row in rows:
        line = [row["model"]]
        line += [_metric_cell(key, row[key], metric.fmt, row["images"]) for key, metric in metrics.items()]
        line.append(_markdown_number(row[SPEED_COLUMN], "{:.1f}"))
        line.extend(_markdown_number(row.get(name), "{:g}") for name in reported)
        cells.append(line)
    return headers, cells


def table_caption(rows: list[dict[str, Any]]) -> str:
    """What the table was measured on, in one sentence (the protocol, when the data follows one)."""
    first = rows[0]
    if is_films(rows):
        size = "films of several sizes" if first["image_size"] == MIXED_SIZES else f"{first['image_size']} px"
        return (
            f"{first['images']} frames ({size}, whole) of {first[FILMS_COLUMN]} colour films in "
            f"`{first['data']}`, turned gray and colorized as `colorize` does, with the temporal filter and without "
            "it (deflicker none); cdc and warp_error per film, averaged over the films; frames/s of the whole "
            "pipeline (decoding, network, filter, encoding)."
        )
    how = f"protocol {first['protocol']}" if first.get("protocol") else "centre crops"
    return (
        f"{first['images']} images ({first['image_size']} px, {how}) of the `{first['split']}` split of "
        f"`{first['data']}`; predictions at each model's native resolution with the full-resolution L re-attached."
    )


def write_results(
    rows: list[dict[str, Any]],
    reported: list[str],
    output_dir: Path,
    sheet: np.ndarray,
    command: str | None = None,
    sheet_format: str = "jpg",
) -> list[Path]:
    """Write results.json/.csv/.md and comparison.<sheet_format> into `output_dir` (which holds none of them yet).

    `command`, when given, is quoted at the end of results.md so the table can be re-made.
    """
    check_choice("comparison_format", sheet_format, SHEET_FORMATS)
    remove_partial_files(output_dir)  # what a killed evaluation left
    columns = [*info_columns(rows), *table_metrics(rows), SPEED_COLUMN, *reported]
    md_path, csv_path, json_path = (output_dir / name for name in ("results.md", "results.csv", "results.json"))
    # non-finite numbers (the ground truth's PSNR is +inf) become null: JSON has no infinity
    atomic_write_text(json_path, strict_json([{key: row.get(key) for key in columns} for row in rows], indent=2) + "\n")

    def write_csv(temp: Path) -> None:
        with temp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({key: row.get(key) for key in columns} for row in rows)

    atomic_write(csv_path, write_csv)

    headers, cells = table_cells(rows, reported)
    lines = [
        "# Evaluation",
        "",
        table_caption(rows),
        "",
        "| " + " | ".join(headers) + " |",
        "|---" * len(headers) + "|",
    ]
    lines += ["| " + " | ".join(line) + " |" for line in cells]
    if not is_films(rows):  # FID is a measure of photo sets
        lines += ["", fid_note(rows)]
    checkpoints = [f"- {row['model']}: `{row['checkpoint']}`" for row in rows if row["checkpoint"]]
    if checkpoints:
        lines += ["", "Checkpoints:", "", *checkpoints]
    if command:
        lines += ["", f"Made by `{command}`."]
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    sheet_path = save_image(sheet, output_dir / f"comparison.{sheet_format}")
    return [md_path, csv_path, json_path, sheet_path]


def print_results(
    rows: list[dict[str, Any]], reported: list[str], written: list[Path], file: TextIO | None = None
) -> None:
    """Show the results table (reference rows included) and where the files are, on the terminal."""
    headers, cells = table_cells(rows, reported)
    table = Table(*headers, title=table_caption(rows).replace("`", ""), title_justify="left", box=box.SIMPLE_HEAD)
    for column in table.columns[1:]:
        column.justify = "right"
    for row, line in zip(rows, cells, strict=True):
        table.add_row(*line, style="dim" if not row["checkpoint"] else None)
    console = Console(file=file or sys.stdout, width=max(120, shutil.get_terminal_size().columns))
    console.print(table)
    folder = display_path(written[0].parent)
    console.print(f"results: {folder}/ ({', '.join(path.name for path in written)})", highlight=False, soft_wrap=True)


def log_results(loggers: list, rows: list[dict[str, Any]], sheet: np.ndarray) -> None:
    """Send the results to the configured Lightning loggers through their generic API.

    Every logger gets ``eval/<model>/<metric>`` scalars (`log_metrics`); loggers that can show
    tables (W&B's `log_table`) get the table, and those that can show images (`loggers.log_image`:
    W&B, TensorBoard) get the comparison sheet.
    """
    metrics = table_metrics(rows)
    for logger in loggers:
        for row in rows:
            scalars = {f"eval/{row['model']}/{key}": row[key] for key in [*metrics, SPEED_COLUMN]}
            logger.log_metrics({k: v for k, v in scalars.items() if v is not None and math.isfinite(v)}, step=0)
        if hasattr(logger, "log_table"):
            columns = [*info_columns(rows), *metrics, SPEED_COLUMN]
            logger.log_table(key="eval/results", columns=columns, data=[[row[c] for c in columns] for row in rows])
    log_image(loggers, "eval/comparison", sheet, step=0)
    for logger in loggers:
        logger.finalize("success")
    # W&B keeps its run open until finished; close it so that multiruns log one run per job
    finish_wandb()
