"""Experiment loggers: a Lightning W&B logger that picks online or offline by itself (`tracking`), image
logging for every logger that can show pictures (W&B, TensorBoard), and a CSV logger that appends on resume."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from colorization.jobs.run_dirs import display_path
from colorization.jobs.tracking import resolve_wandb_mode, run_tags


def wandb_logger(
    save_dir: str,
    project: str = "bw-colorization",
    mode: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    **kwargs,
) -> WandbLogger:
    """A Lightning `WandbLogger` that is online when logged in and offline otherwise.

    `mode`: online, offline, disabled, or None to decide as `resolve_wandb_mode` does. `group` and
    `tags` as given (the entry points fill in a multirun's group and the chosen model and colour
    space, see `colorization.jobs.tasks.hydra_job`). W&B's own terminal output is kept to its errors:
    where the run is (its page, or the ``wandb sync`` command of an offline run) is part of the
    summary at the end of a run (`wandb_run_line`).
    """
    import wandb

    mode = resolve_wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    # offline, even the banner and the closing history would only repeat what the summary says
    settings = kwargs.pop("settings", None) or wandb.Settings(quiet=True, silent=mode == "offline")
    logger = WandbLogger(
        save_dir=save_dir,
        project=project,
        mode=mode,
        group=group,
        tags=run_tags(tags),
        settings=settings,
        **kwargs,
    )
    # Lightning passes anonymous=None, a setting wandb deprecated and warns about on every run
    if logger._wandb_init.get("anonymous") is None:
        logger._wandb_init.pop("anonymous", None)
    return logger


def wandb_run_line() -> str | None:
    """Where the current W&B run is: its page, or for an offline run the command that uploads it; None without one."""
    wandb = sys.modules.get("wandb")  # only loaded when a W&B logger was used
    run = None if wandb is None else wandb.run
    if run is None:
        return None
    if run.settings._offline:
        return f"offline; upload with: wandb sync {display_path(run.settings.sync_dir)}"
    return run.url


def log_image(loggers: list[Logger], key: str, image: np.ndarray, step: int, caption: str | None = None) -> None:
    """Send an (H, W, 3) uint8 image to every logger that can show images (W&B, TensorBoard)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            captions = {"caption": [caption]} if caption else {}
            logger.log_image(key=key, images=[image], step=step, **captions)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image, global_step=step, dataformats="HWC")


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued, not deleted."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class AppendingCSVLogger(CSVLogger):
    """`CSVLogger` whose ``metrics.csv`` keeps the rows of earlier attempts of the run: a resumed run
    (``resume=RUN_DIR``) appends its epochs to the interrupted run's instead of deleting them."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
