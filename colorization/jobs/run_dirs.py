"""Run directories: one run (and its resumptions) owns a directory, named after what ran, and nothing in it is lost.

- `run_name` (the OmegaConf resolver ``${run_name:...}`` of `conf/hydra/default.yaml`) names a run
  directory after its time, model, colour space and experiment; `display_path` shows paths relative
  to where the user is.
- `RunDirGuard` (a Hydra callback, `conf/hydra/default.yaml`): before Hydra writes anything, a
  fresh run or sweep into a directory that already holds files is refused, and ``resume=RUN_DIR``
  (or a ``ckpt_path`` inside the run directory) makes the run continue in RUN_DIR from its checkpoint.
- `resume_path` finds the checkpoint to resume (``ckpt_path=last``: this run directory's);
  `check_same_model` compares a checkpoint's stored model config and colour space with the
  current one before anything heavy runs.
- `check_writable` refuses an output directory this process cannot write to, at start-up;
  `remove_unstarted_run_dir` deletes what Hydra wrote for a job that stopped at a config or data error.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from colorization.errors import ColorizationError, ConfigError, DataError
from colorization.files import atomic
from colorization.instantiate import RUN_OPTIONS, update_targets

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


LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
"""Where a training run keeps the checkpoint to resume from, relative to its directory."""
HPC_CHECKPOINTS = "hpc_ckpt_*.ckpt"
"""What Lightning writes into the run directory when SLURM warns a job before its time limit."""
SHOW_KEYS = 5
"""How many differing keys a mismatch message names."""


class RunDirGuard(Callback):
    """Hydra callback: make ``resume=RUN_DIR`` run in RUN_DIR, and refuse a fresh run or sweep into a used directory.

    Runs in ``on_run_start`` (``on_multirun_start`` for a sweep), before Hydra creates the directory
    or writes ``.hydra/``, so a refused command leaves the directory exactly as it was. Exit code 2
    with one ``error:`` line. Lightning's own way to resume, ``hydra.run.dir=RUN_DIR
    ckpt_path=RUN_DIR/checkpoints/last.ckpt`` (any checkpoint inside the run directory), is a
    resumption of that run, checked like ``resume=RUN_DIR``.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # the run directory's name reads ${hydra:runtime.choices...}, which Hydra serves only once the
        # job starts: give it the config now (the job sets it again), leaving ``hydra`` writable here
        HydraConfig.instance().set_config(config)
        OmegaConf.set_readonly(config.hydra, None)
        resume = config.get("resume")
        with read_write(config), open_dict(config):
            if resume:
                run_dir = Path(str(resume)).expanduser()
                if latest_checkpoint(run_dir) is None:
                    _refuse(f"resume={str(resume)!r}: no {LAST_CHECKPOINT} there; expected a training run directory")
                config.hydra.run.dir = str(run_dir)
                if config.get("ckpt_path") not in (None, "last"):
                    _refuse(f"resume={str(resume)!r} and ckpt_path={config.ckpt_path!r}: set one of them")
                config.ckpt_path = "last"
            run_dir = Path(str(config.hydra.run.dir))
        if _launched_with_others():
            return  # every process of a multi-process launch runs Hydra in the same directory
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and config.get("train", True):
            checkpoint = latest_checkpoint(run_dir) if ckpt_path == "last" else Path(str(ckpt_path)).expanduser()
            if ckpt_path == "last" or is_own_checkpoint(checkpoint, run_dir):
                self._check_resumption(config, run_dir, checkpoint)
                return
        _check_unused("hydra.run.dir", run_dir, "run", "choose a new directory, or resume that run with resume=RUN_DIR")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep directory belongs to one sweep: a rerun into it would overwrite its jobs' results."""
        if _launched_with_others():
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        _check_unused("hydra.sweep.dir", sweep_dir, "sweep", "choose a new directory; by default each sweep gets one")

    @staticmethod
    def _check_resumption(config: DictConfig, run_dir: Path, checkpoint: Path | None) -> None:
        """A resumption continues in its own directory: its checkpoint must exist and fit the model,
        and this attempt's config goes to a new ``.hydra/resumed_<time>/`` beside the first one's."""
        if checkpoint is None or not checkpoint.is_file():
            if config.ckpt_path == "last":
                _refuse(
                    f"ckpt_path=last: {run_dir / LAST_CHECKPOINT} does not exist; resume a run with resume=RUN_DIR "
                    "(or hydra.run.dir=RUN_DIR ckpt_path=last)"
                )
            _refuse(f"ckpt_path={str(config.ckpt_path)!r}: {checkpoint} does not exist; expected a checkpoint")
        try:
            check_same_model(stored_model(checkpoint), config.model, config.colorspace.name, checkpoint)
        except ColorizationError as error:
            _refuse(str(error))
        with read_write(config), open_dict(config):
            config.hydra.output_subdir = f".hydra/resumed_{datetime.now():%Y-%m-%d_%H-%M-%S_%f}"


def is_own_checkpoint(checkpoint: str | Path, run_dir: str | Path) -> bool:
    """Whether `checkpoint` lies inside `run_dir`: resuming it there continues that run."""
    return Path(checkpoint).resolve().is_relative_to(Path(run_dir).resolve())


def _check_unused(key: str, directory: Path, kind: str, advice: str) -> None:
    """Refuse (exit 2) a fresh run or sweep into a `directory` that cannot be created or already holds files."""
    existing = next(p for p in (directory, *directory.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        _refuse(f"{key}={str(directory)!r} cannot be created: {existing} is not a writable directory")
    if directory.is_dir() and any(directory.iterdir()):
        _refuse(
            f"{key}={str(directory)!r} already holds files of another {kind}; refusing to overwrite them ({advice})"
        )


def _launched_with_others() -> bool:
    """True in a process that shares its run directory with others started at the same time: a
    DDP worker Lightning started (``LOCAL_RANK``/``RANK`` > 0) or any task of a multi-task ``srun``."""
    ranks = (os.environ.get(name, "0") for name in ("LOCAL_RANK", "RANK"))
    return any(rank != "0" for rank in ranks) or int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(ConfigError.exit_code)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest full checkpoint of a run: ``checkpoints/last.ckpt``, or a SLURM pre-emption
    checkpoint (``hpc_ckpt_N.ckpt``) written after it; None without either."""
    run_dir = Path(run_dir)
    candidates = [p for p in (run_dir / LAST_CHECKPOINT, *run_dir.glob(HPC_CHECKPOINTS)) if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime_ns) if candidates else None


def resume_path(ckpt_path: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint `ckpt_path` names: None, ``last`` (this run's newest, `latest_checkpoint`) or a file."""
    if ckpt_path in (None, ""):
        return None
    path = Path(str(ckpt_path)).expanduser()
    if ckpt_path == "last":
        path = latest_checkpoint(output_dir) or Path(output_dir) / LAST_CHECKPOINT
    if not path.is_file():
        raise DataError(f"ckpt_path={ckpt_path!r}: {path} does not exist; expected a checkpoint written by train.py")
    return path


def stored_model(path: str | Path) -> dict[str, Any]:
    """The ``colorization`` entry (model config and colour space) of a checkpoint, read without unpickling."""
    # torch loads here, not at import: the entry points import this module before Hydra parses --help
    from colorization.files.weights import safe_load

    checkpoint = safe_load(path, map_location="cpu", mmap=True)
    stored = checkpoint.get("colorization") if isinstance(checkpoint, dict) else None
    if not isinstance(stored, dict):
        raise DataError(f"{path}: not a checkpoint written by train.py (no 'colorization' entry)")
    return stored


def check_same_model(stored: Mapping[str, Any], model_cfg: Any, colorspace: str, path: str | Path) -> None:
    """Refuse to resume or test a checkpoint under another model config or colour space.

    `stored` is the checkpoint's ``colorization`` entry (``{"model": ..., "colorspace": ...}``); its
    ``_target_``s are compared where their classes live now (a checkpoint written before a class moved
    resumes under today's config). Raises `ConfigError` naming the differing keys with both values.
    """
    current = OmegaConf.to_container(model_cfg, resolve=True) if isinstance(model_cfg, DictConfig) else model_cfg
    current = {key: value for key, value in current.items() if key not in RUN_OPTIONS}
    theirs = copy.deepcopy(dict(stored.get("model") or {}))
    update_targets(theirs)
    differences = [
        f"{key}: {_shown(theirs)} in the checkpoint, {_shown(ours)} now"
        for key, theirs, ours in _differences(theirs, current, "model")
    ]
    if stored.get("colorspace") != colorspace:
        differences.insert(0, f"colorspace: {stored.get('colorspace')!r} in the checkpoint, {colorspace!r} now")
    if differences:
        shown = "; ".join(differences[:SHOW_KEYS]) + (" ..." if len(differences) > SHOW_KEYS else "")
        raise ConfigError(
            f"{path}: the checkpoint was trained with another model config ({shown}); use the same model and "
            "colorspace options as the run that wrote it"
        )


def _shown(value: Any) -> str:
    return "not set (the code's default)" if value is None else repr(value)


def _differences(theirs: Any, ours: Any, key: str) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(theirs, Mapping) and isinstance(ours, Mapping):
        for name in sorted(set(theirs) | set(ours), key=str):
            yield from _differences(theirs.get(name), ours.get(name), f"{key}.{name}")
    elif theirs != ours:
        yield key, theirs, ours


def check_writable(directory: str | Path, key: str = "paths.output_dir") -> None:
    """`colorization.files.atomic.check_writable` for a run's output folders (`key`: the config key that chose it).

    Lightning swallows a failed checkpoint save; finding out at start-up loses nothing.
    """
    atomic.check_writable(directory, key)


def wandb_run_id(output_dir: str | Path) -> str | None:
    """The id of the W&B run logged into `output_dir` (its ``wandb/run-*-<id>`` directory), if any."""
    runs = sorted((Path(output_dir) / "wandb").glob("*run-*-*"), key=lambda p: p.stat().st_mtime)
    runs = [p for p in runs if p.is_dir() and not p.is_symlink()]
    return runs[-1].name.rsplit("-", 1)[-1] if runs else None
