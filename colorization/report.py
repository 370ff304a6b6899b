"""Writing an evaluation's results: the table files, the comparison image, and the loggers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from colorization.fid import FID_WEIGHTS_NAME, MIN_UNBIASED_IMAGES
from colorization.loggers import finish_wandb, log_image
from colorization.metrics import FULL_METRICS, OPTIONAL_METRICS, metric_header
from colorization.visualize import sample_sheet, save_png

OUTPUT_FILES = ("results.md", "results.csv", "results.json", "comparison.png")
INFO_COLUMNS = ("model", "checkpoint", "data", "protocol", "split", "images", "image_size")
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


def _json_number(value: Any) -> Any:
    """Non-finite floats (the ground truth's PSNR is +inf) become null: JSON has no infinity."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _markdown_number(value: float | None, fmt: str) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return fmt.format(value)


def table_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`FULL_METRICS`, then each of `OPTIONAL_METRICS` that the rows hold (e.g. FID with ``fid.weights``)."""
    present = {key: metric for key, metric in OPTIONAL_METRICS.items() if any(row.get(key) is not None for row in rows)}
    return {**FULL_METRICS, **present}


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


def write_results(
    rows: list[dict[str, Any]], reported: list[str], output_dir: Path, sheet: np.ndarray, command: str | None = None
) -> list[Path]:
    """Write results.json/.csv/.md and comparison.png into `output_dir` (which holds none of them yet).

    `command`, when given, is quoted at the end of results.md so the table can be re-made.
    """
    metrics = table_metrics(rows)
    columns = [*INFO_COLUMNS, *metrics, SPEED_COLUMN, *reported]
    paths = [output_dir / name for name in OUTPUT_FILES]
    md_path, csv_path, json_path, png_path = paths
    json_rows = [{key: _json_number(row.get(key)) for key in columns} for row in rows]
    json_path.write_text(json.dumps(json_rows, indent=2, allow_nan=False) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({key: row.get(key) for key in columns} for row in rows)

    first = rows[0]
    headers = ["model", *(metric_header(metric) for metric in metrics.values()), "images/s", *reported]
    how = f"protocol {first['protocol']}" if first.get("protocol") else "centre crops"
    lines = [
        "# Evaluation",
        "",
        f"{first['images']} images ({first['image_size']} px, {how}) of the `{first['split']}` split of "
        f"`{first['data']}`; predictions at each model's native resolution with the full-resolution L re-attached.",
        "",
        "| " + " | ".join(headers) + " |",
        "|---" * len(headers) + "|",
    ]
    for row in rows:
        cells = [row["model"]]
        cells += [_metric_cell(key, row[key], metric.fmt, row["images"]) for key, metric in metrics.items()]
        cells.append(_markdown_number(row[SPEED_COLUMN], "{:.1f}"))
        cells.extend(_markdown_number(row.get(name), "{:g}") for name in reported)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", fid_note(rows)]
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
    metrics = table_metrics(rows)
    for logger in loggers:
        for row in rows:
            scalars = {f"eval/{row['model']}/{key}": row[key] for key in [*metrics, SPEED_COLUMN]}
            logger.log_metrics({k: v for k, v in scalars.items() if v is not None and math.isfinite(v)}, step=0)
        if hasattr(logger, "log_table"):
            columns = [*INFO_COLUMNS, *metrics, SPEED_COLUMN]
            logger.log_table(key="eval/results", columns=columns, data=[[row[c] for c in columns] for row in rows])
    log_image(loggers, "eval/comparison", sheet, step=0)
    for logger in loggers:
        logger.finalize("success")
    # W&B keeps its run open until finished; close it so that multiruns log one run per job
    finish_wandb()
