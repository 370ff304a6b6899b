"""Experiment loggers: a W&B logger that picks online or offline by itself, and image logging for
every logger that can show pictures (W&B, TensorBoard)."""

from __future__ import annotations

import csv
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from colorization.errors import check_choice
from colorization.jobs.run_dirs import display_path

WANDB_MODES = ("online", "offline", "disabled")
DEFAULT_WANDB_HOST = "https://api.wandb.ai"
# config groups whose chosen option becomes a W&B tag
TAG_GROUPS = ("model", "colorspace")


def wandb_credentials_available() -> bool:
    """True when W&B can authenticate without asking: ``WANDB_API_KEY`` is set, or ``wandb login``
    stored a key for the W&B host in the netrc file (``$NETRC`` or ``~/.netrc``). Never uses the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_WANDB_HOST)).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_wandb_mode(mode: str | None = None) -> str:
    """The W&B mode of a run: `mode` if given, else ``$WANDB_MODE``, else online when credentials
    are available and offline otherwise (so a run never stops to ask for a login)."""
    source = "logger.wandb.mode" if mode else "WANDB_MODE"
    chosen = mode or os.environ.get("WANDB_MODE") or ("online" if wandb_credentials_available() else "offline")
    # wandb also accepts "dryrun" (= offline) and "run" (= online) in $WANDB_MODE
    chosen = {"dryrun": "offline", "run": "online"}.get(chosen, chosen)
    check_choice(source, chosen, WANDB_MODES)
    return chosen


def multirun_group(task_name: str, sweep_dir: str | Path) -> str:
    """The W&B group shared by the jobs of one Hydra multirun: ``<task>-<sweep dir name>``."""
    return f"{task_name}-{Path(sweep_dir).name}"


def run_tags(tags: list[str] | None, choices: list[str | None] = ()) -> list[str]:
    """`choices` (the options chosen for the `TAG_GROUPS`, e.g. ``model2``, ``hls``) plus `tags`,
    without empty or repeated entries."""
    return list(dict.fromkeys(str(tag) for tag in [*choices, *(tags or [])] if tag))


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


def finish_wandb() -> None:
    """Close the current W&B run, if any (wandb keeps one run per process until finished)."""
    wandb = sys.modules.get("wandb")  # only loaded when a W&B logger was used
    if wandb is not None and wandb.run is not None:
        wandb.finish()


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
