"""What the entry points share: running a job as a task, and what only the running Hydra app knows.

`run_task` turns user errors into one line and their exit code (2 for bad input) and closes W&B
whatever happens.
`hydra_job` is the one place that reads Hydra's runtime config (the command line, the multirun
and the chosen options); the entry points hand what it finds to the library (`apply_to_loggers`,
`evaluate(cfg, command)`), which never reads it itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from colorization.errors import ColorizationError, check_choice, exit_on_user_error
from colorization.jobs.loggers import TAG_GROUPS, finish_wandb, multirun_group, run_tags
from colorization.jobs.run_dirs import remove_unstarted_run_dir

USER_ERROR_EXIT_CODE = ColorizationError.exit_code
T = TypeVar("T")


def run_task(job: Callable[[], T], run_dir: str | Path | None = None) -> T:
    """Run `job`; a `ColorizationError` becomes ``error: <message>`` on stderr and its `exit_code`
    (2 for bad input, 3 for a diverged training, 143 after a SIGTERM).

    Any other exception is a bug and keeps its traceback. After a user error, `run_dir` (the
    job's output directory) is deleted when it holds only what Hydra wrote before the job started
    (`run_dirs.remove_unstarted_run_dir`), so failed starts leave no look-alike run behind. The
    W&B run, if the job opened one, is closed whatever happens, so that every job of a multirun
    gets its own run.
    """
    try:
        return exit_on_user_error(job)
    except SystemExit:
        if run_dir is not None:
            remove_unstarted_run_dir(run_dir)
        raise
    finally:
        finish_wandb()


@dataclass(frozen=True)
class HydraJob:
    """What the running Hydra app knows about this job."""

    command: str
    """The command line that made the job, e.g. ``python evaluate.py split=val``."""
    group: str | None = None
    """The W&B group of a multirun's jobs (`loggers.multirun_group`); None for a single run."""
    choices: dict[str, str] = field(default_factory=dict)
    """Config group -> chosen option (``model: cnn``)."""
    output_dir: str | None = None
    """The job's run directory."""


def hydra_job(script: str) -> HydraJob:
    """The running Hydra job of `script` (``train.py``); call from an entry point's ``@hydra.main``."""
    hydra_cfg = HydraConfig.get()
    command = " ".join([f"python {script}", *(shlex.quote(o) for o in hydra_cfg.overrides.task)])
    group = None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        group = multirun_group(hydra_cfg.job.name, hydra_cfg.sweep.dir)
    choices = {key: str(value) for key, value in hydra_cfg.runtime.choices.items() if value is not None}
    return HydraJob(command=command, group=group, choices=choices, output_dir=hydra_cfg.runtime.output_dir)


def apply_to_loggers(cfg: DictConfig, job: HydraJob) -> None:
    """Give every logger entry of `cfg` that takes them the multirun's group (when its own is null)
    and the chosen model and colour space as tags (see `loggers.run_tags`)."""
    for entry in (cfg.get("logger") or {}).values():
        if entry is None:
            continue
        if "group" in entry and entry.group is None:
            entry.group = job.group
        if "tags" in entry:
            entry.tags = run_tags(entry.tags, [job.choices.get(group) for group in TAG_GROUPS])


def check_group_options(args: list[str], config_dir: str | Path) -> None:
    """Refuse a ``group=option`` argument whose ``<config_dir>/<group>/<option>.yaml`` does not exist.

    Hydra would stop on it too, but with a page of search paths and exit code 1; this runs before
    Hydra (call it from the entry point) and stops with one ``error:`` line and exit code 2.
    Sweeps (``model=cnn,model2``) are checked option by option; sweep functions are left to Hydra.
    """
    config_dir = Path(config_dir)

    def check() -> None:
        for arg in args:
            key, separator, value = arg.lstrip("+~").partition("=")
            group = config_dir / key
            if not separator or arg.startswith("-") or key.startswith("hydra") or not group.is_dir():
                continue
            if "(" in value or "$" in value:
                continue
            options = sorted(p.stem for p in group.glob("*.yaml"))
            for option in value.split(","):
                if option not in ("null", ""):
                    check_choice(key, option, options)

    run_task(check)
