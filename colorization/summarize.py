"""Tabulate a Hydra multirun: one row per job, the overrides that differ between jobs, and final metrics.

    python -m colorization.summarize logs/train/multiruns/<date>_<time>

writes ``summary.md`` and ``summary.csv`` into that directory and prints the markdown table.
Each job directory holds ``.hydra/overrides.yaml`` (what the job was given) and ``metrics.json``
(written by `colorization.jobs.train.train` when the job finished).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import yaml

from colorization.errors import DataError, exit_on_user_error
from colorization.files.atomic import atomic_write, atomic_write_text, remove_partial_files

# metrics shown in the table, in this order: every key with these prefixes (per-step training
# values are left out), then the training throughput
METRIC_PREFIXES = ("val/", "test/")
THROUGHPUT = "train/images_per_sec"


def is_reported(key: str) -> bool:
    """Whether a metric of ``metrics.json`` gets a column."""
    return key.startswith(METRIC_PREFIXES) or key == THROUGHPUT


def _metric_order(key: str) -> tuple[int, str]:
    return (METRIC_PREFIXES.index(key[: key.index("/") + 1]) if key != THROUGHPUT else len(METRIC_PREFIXES), key)


def read_job(job_dir: Path) -> dict[str, str]:
    """One job's overrides (``key=value`` as given) and final metrics; ``status`` says whether it finished."""
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    row = dict(override.lstrip("+~").split("=", 1) for override in overrides if "=" in override)
    metrics_file = job_dir / "metrics.json"
    if metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update({key: f"{value:.6g}" for key, value in metrics.items() if is_reported(key)})
        row["status"] = "done"
    else:
        row["status"] = "failed or running"
    return row


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a multirun (those with ``.hydra/overrides.yaml``), in job-number order."""
    jobs = [path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    return sorted(jobs, key=lambda path: (int(path.name) if path.name.isdigit() else float("inf"), path.name))


def summarize(sweep_dir: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of the table: job, the overrides that vary between jobs, metrics, status."""
    sweep_dir = Path(sweep_dir)
    jobs = job_dirs(sweep_dir)
    if not jobs:
        raise DataError(f"{sweep_dir}: no job directories with .hydra/overrides.yaml; expected a Hydra multirun dir")
    rows = [{"job": job.name, **read_job(job)} for job in jobs]
    keys = list(dict.fromkeys(key for row in rows for key in row))
    metrics = sorted((key for key in keys if is_reported(key)), key=_metric_order)
    # an override that every job shares is the sweep's setting, not a difference between jobs
    varying = [key for key in keys if key not in metrics and key not in ("job", "status") and _varies(rows, key)]
    return ["job", *varying, *metrics, "status"], rows


def _varies(rows: list[dict[str, str]], key: str) -> bool:
    return len({row.get(key, "") for row in rows}) > 1


def to_markdown(columns: list[str], rows: list[dict[str, str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row.get(column, "") for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: str | Path) -> str:
    """Write ``summary.md`` and ``summary.csv`` into `sweep_dir`; returns the markdown."""
    sweep_dir = Path(sweep_dir)
    columns, rows = summarize(sweep_dir)
    markdown = to_markdown(columns, rows)
    remove_partial_files(sweep_dir)  # what a killed summary left

    def write_csv(temp: Path) -> None:
        with temp.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write_text(sweep_dir / "summary.md", markdown)
    atomic_write(sweep_dir / "summary.csv", write_csv)
    return markdown


def main(argv: list[str] | None = None) -> None:
    """``python -m colorization.summarize DIR``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun directory, e.g. logs/train/multiruns/<date>_<time>")
    args = parser.parse_args(argv)
    exit_on_user_error(lambda: sys.stdout.write(write_summary(args.sweep_dir)))


if __name__ == "__main__":
    main()
