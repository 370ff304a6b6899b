"""Writing an evaluation's results: the table files, the comparison image, and the loggers."""

from __future__ import annotations

import csv
import json
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
from colorization.loggers import finish_wandb, log_image
from colorization.metrics import FULL_METRICS, metric_header
from colorization.run_dirs import display_path
from colorization.visualize import labelled_sheet, save_image

SHEET_FORMATS = ("jpg", "png")
"""Formats of the comparison sheet: JPEG (small, the default) or lossless PNG."""
OUTPUT_FILES = ("results.md", "results.csv", "results.json", *(f"comparison.{fmt}" for fmt in SHEET_FORMATS))
"""Every file an evaluation may write; a run directory holding any of them is not written to again."""
INFO_COLUMNS = ("model", "checkpoint", "data", "split", "images", "image_size")
SPEED_COLUMN = "images_per_s"


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


def _json_number(value: Any) -> Any:
    """Non-finite floats (the ground truth's PSNR is +inf) become null: JSON has no infinity."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _markdown_number(value: float | None, fmt: str) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return fmt.format(value)


def table_cells(rows: list[dict[str, Any]], reported: list[str]) -> tuple[list[str], list[list[str]]]:
    """The results table as text: headers (metric label and better direction) and one list of cells per row."""
    headers = ["model", *(metric_header(metric) for metric in FULL_METRICS.values()), "images/s", *reported]
    cells = []
    for row in rows:
        line = [row["model"], *(_markdown_number(row[key], metric.fmt) for key, metric in FULL_METRICS.items())]
        line.append(_markdown_number(row[SPEED_COLUMN], "{:.1f}"))
        line.extend(_markdown_number(row.get(name), "{:g}") for name in reported)
        cells.append(line)
    return headers, cells


def table_caption(rows: list[dict[str, Any]]) -> str:
    """What the table was measured on, in one sentence."""
    first = rows[0]
    return (
        f"{first['images']} images ({first['image_size']} px, centre crops) of the `{first['split']}` split of "
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
    columns = [*INFO_COLUMNS, *FULL_METRICS, SPEED_COLUMN, *reported]
    md_path, csv_path, json_path = (output_dir / name for name in ("results.md", "results.csv", "results.json"))
    json_rows = [{key: _json_number(row.get(key)) for key in columns} for row in rows]
    json_path.write_text(json.dumps(json_rows, indent=2, allow_nan=False) + "\n")
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({key: row.get(key) for key in columns} for row in rows)

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
    checkpoints = [f"- {row['model']}: `{row['checkpoint']}`" for row in rows if row["checkpoint"]]
    if checkpoints:
        lines += ["", "Checkpoints:", "", *checkpoints]
    if command:
        lines += ["", f"Made by `{command}`."]
    md_path.write_text("\n".join(lines) + "\n")
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
