"""Writing an evaluation's results: the table files, the comparison image, and the loggers."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from colorization.atomic import atomic_write, atomic_write_text, strict_json
from colorization.loggers import finish_wandb, log_image
from colorization.metrics import FULL_METRICS, metric_header
from colorization.visualize import sample_sheet, save_png

OUTPUT_FILES = ("results.md", "results.csv", "results.json", "comparison.png")
INFO_COLUMNS = ("model", "checkpoint", "data", "split", "images", "image_size")
SPEED_COLUMN = "images_per_s"
HEADER_HEIGHT = 14
"""Pixels of the name strip above each column of comparison.png."""


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
    # non-finite numbers (the ground truth's PSNR is +inf) become null: JSON has no infinity
    atomic_write_text(json_path, strict_json([{key: row.get(key) for key in columns} for row in rows], indent=2) + "\n")

    def write_csv(temp: Path) -> None:
        with temp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({key: row.get(key) for key in columns} for row in rows)

    atomic_write(csv_path, write_csv)

    first = rows[0]
    headers = ["model", *(metric_header(metric) for metric in FULL_METRICS.values()), "images/s", *reported]
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
        cells = [row["model"], *(_markdown_number(row[key], metric.fmt) for key, metric in FULL_METRICS.items())]
        cells.append(_markdown_number(row[SPEED_COLUMN], "{:.1f}"))
        cells.extend(_markdown_number(row.get(name), "{:g}") for name in reported)
        lines.append("| " + " | ".join(cells) + " |")
    checkpoints = [f"- {row['model']}: `{row['checkpoint']}`" for row in rows if row["checkpoint"]]
    if checkpoints:
        lines += ["", "Checkpoints:", "", *checkpoints]
    if command:
        lines += ["", f"Made by `{command}`."]
    atomic_write_text(md_path, "\n".join(lines) + "\n")
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
