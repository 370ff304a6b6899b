"""Run directories: a name that says what ran, no directory left behind by a run that never
started, and paths shown relative to where the user is.

`run_name` is registered as the OmegaConf resolver ``${run_name:...}`` that `conf/hydra/default.yaml`
uses for ``hydra.run.dir``; `remove_unstarted_run_dir` deletes what Hydra wrote for a job that
stopped at a config or data error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import OmegaConf

HYDRA_FILES = (".hydra",)
"""What Hydra writes into a run directory before the job starts (plus the job's ``<task>.log``)."""


def run_name(time: str, model: str | None = None, colorspace: str | None = None, experiment: str | None = None) -> str:
    """``<time>_<model>-<colorspace>[_<experiment>]``; the parts a task has no such choice for are left out.

    E.g. ``2026-11-26_17-30-00_123456_model2-hls`` or ``..._cnn-lab_study_cnn``; ``<time>`` alone
    for `evaluate.py`, which chooses no model. Slashes (nested options) become dashes.
    """
    parts = [time]
    if model:
        parts.append(f"{model}-{colorspace}" if colorspace else model)
    if experiment:
        parts.append(experiment)
    return "_".join(part.replace("/", "-") for part in parts)


def display_path(path: str | Path, base: str | Path | None = None) -> str:
    """`path` relative to `base` (default: the working directory) when it lies below it, else as given:
    short paths in tables and summaries that still work from where the user is."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path(base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def register_resolvers() -> None:
    """Make ``${run_name:...}`` available to the configs (safe to call more than once)."""
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", run_name)


def remove_unstarted_run_dir(output_dir: str | Path) -> bool:
    """Delete `output_dir` if it holds nothing but what Hydra wrote before the job ran; True if deleted.

    A directory with anything else in it (checkpoints of a run being resumed, a W&B run, results)
    is left alone, so that nothing a user already had is ever lost.
    """
    path = Path(output_dir)
    if not path.is_dir():
        return False
    for entry in path.iterdir():
        hydra_file = entry.name in HYDRA_FILES or (entry.is_file() and entry.suffix == ".log")
        if not hydra_file:
            return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()
