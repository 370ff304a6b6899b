"""How training runs write and read their checkpoints.

- `RunCheckpoint`: ``last.ckpt`` holds the full state (weights, optimizers, loops, random
  generators) after every epoch and after a SIGTERM, so a resumed run continues exactly where the
  interrupted one stopped; ``best_*.ckpt`` holds the weights and the model config only.
- `AtomicCheckpointIO`: checkpoints are written atomically in their own directory
  (`colorization.files.atomic`) and read with ``weights_only=True`` (`colorization.files.weights.safe_load`):
  a checkpoint file can never run code.
- `NonFiniteGuard`: a NaN or infinite loss, gradient norm or validation metric stops training
  before a checkpoint of broken weights is written.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from colorization.errors import DivergedError, check_int
from colorization.files.atomic import atomic_write
from colorization.files.weights import safe_load

LAST = "last.ckpt"
FULL_STATE = ("callbacks", "optimizer_states", "lr_schedulers")
"""What a full checkpoint holds beyond a weights-only one (Lightning's ``dump_checkpoint``)."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, writing through a temporary file in the target directory and
    never unpickling: a kill mid-save leaves the previous file (or none), and loading accepts
    tensors and plain Python values only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_write(path, lambda temp: torch.save(checkpoint, temp))

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        checkpoint = safe_load(path, map_location=map_location or "cpu")
        if not isinstance(checkpoint, dict):
            from colorization.errors import DataError

            raise DataError(f"{path}: not a training checkpoint (expected a dict, found {type(checkpoint).__name__})")
        return checkpoint


class RunCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` whose ``last.ckpt`` is the last state of the run, always.

    Lightning writes ``last`` only in a step that also wrote a top-k checkpoint, so ``last`` could
    be an older epoch. Here ``last.ckpt`` is written at the end of every epoch (full state, plus
    the torch, CUDA, NumPy and Python random states, restored on resume) and when
    a SIGTERM stops training; top-k files (``best_*.ckpt``) keep only the weights and the model
    config (`ColorizerModule.on_save_checkpoint`), which is all that testing and evaluation read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("save_last", True)
        # a run directory belongs to one run: last.ckpt is replaced, never joined by last-v1.ckpt
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(*args, **kwargs)
        self._last_saved_step: int | None = None
        self._best_saved_step: int | None = None

    # ---- when ``last`` is written ----------------------------------------------------------

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_of_epoch(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_of_epoch(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # SIGTERM (a scheduler's time limit, `kill`): keep the state reached, mid-epoch, to resume from
        if isinstance(exception, SIGTERMException) and self._may_save(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _may_save(self, trainer: L.Trainer) -> bool:
        return (
            not trainer.fast_dev_run
            and not trainer.sanity_checking
            and trainer.state.fn == TrainerFn.FITTING
            and self._last_saved_step != trainer.global_step
        )

    def _save_last_of_epoch(self, trainer: L.Trainer) -> None:
        if self._may_save(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        best = Path(self.best_model_path) if self.best_model_path else None
        best_was_last = best is not None and _same_file(best, Path(self.last_model_path or ""))
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_saved_step = trainer.global_step
        last = Path(self.last_model_path) if self.last_model_path else None
        if not trainer.is_global_zero or best is None or not best.is_file() or last is None or not last.is_file():
            return
        if self._best_saved_step == trainer.global_step:
            # best and last are the same epoch: one file under two names, not two copies
            with contextlib.suppress(OSError):  # no hard links here: keep the weights-only file
                atomic_write(best, lambda temp: os.link(last, temp))
        elif best_was_last:
            # last moved on and the best keeps the old full state: shrink it to the weights
            full = safe_load(best)
            atomic_write(best, lambda temp: torch.save({k: v for k, v in full.items() if k not in FULL_STATE}, temp))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        # as ModelCheckpoint._save_checkpoint, but only ``last`` carries the full training state
        weights_only = Path(filepath).name != LAST
        trainer.save_checkpoint(filepath, weights_only=weights_only)
        if weights_only:
            self._best_saved_step = trainer.global_step
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

    # ---- random states -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "random_state": capture_random_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Lightning restores callbacks before it creates the first loader iterator of the resumed
        # epoch (and runs its sanity check with isolated generators): rewinding here makes that
        # epoch draw the same order, crops and dropout masks as the interrupted run would have
        state_dict = dict(state_dict)
        random_state = state_dict.pop("random_state", None)
        if random_state is not None:
            restore_random_state(random_state)
        super().load_state_dict(state_dict)


def capture_random_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), NumPy and Python random states, as tensors and plain values."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }


def restore_random_state(state: dict[str, Any]) -> None:
    """Set the generators back to a `capture_random_state` result."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class NonFiniteGuard(L.Callback):
    """Stops training at a NaN or infinite training loss term, gradient norm or validation metric.

    Checks the ``train/*`` values logged in a step (loss terms, a GAN's gradient norms) and every
    ``val/*`` metric after validation; raises `DivergedError`. Every checkpoint is checked before
    it is written (`on_save_checkpoint`), so checkpoints on disk always hold a finite run.

    Reading a value on the host makes the CPU wait for the GPU to finish the step before it can
    queue the next one, so on an accelerator the training values are read every
    `check_every_n_steps` batches and at an epoch's last batch rather than after each (default
    None: every batch on the CPU, where reading costs nothing; every 50 elsewhere). A diverged
    run stays diverged (non-finite gradients make the weights non-finite), so a later check still
    sees it; the message says which batch was checked.
    """

    DEVICE_INTERVAL = 50

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None:
            check_int("callbacks.non_finite_guard.check_every_n_steps", check_every_n_steps, 1, 1_000_000)
        self.check_every_n_steps = check_every_n_steps

    def interval(self, device: torch.device) -> int:
        """Batches between two reads of the training values on `device`."""
        if self.check_every_n_steps is not None:
            return self.check_every_n_steps
        return 1 if device.type == "cpu" else self.DEVICE_INTERVAL

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        if (batch_idx + 1) % self.interval(pl_module.device) == 0 or trainer.is_last_batch:
            self._check(trainer, "train/", self._where(trainer, batch_idx))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._check(trainer, "val/", f"the validation of epoch {trainer.current_epoch}")

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._check(trainer, "train/", f"{self._where(trainer, None)}, before a checkpoint was written")

    @staticmethod
    def _where(trainer: L.Trainer, batch_idx: int | None) -> str:
        batch = "" if batch_idx is None else f", batch {batch_idx}"
        return f"step {trainer.global_step} (epoch {trainer.current_epoch}{batch})"

    @staticmethod
    def _check(trainer: L.Trainer, prefix: str, where: str) -> None:
        for key, value in trainer.callback_metrics.items():
            if not key.startswith(prefix) or key.endswith("_epoch"):
                continue
            number = float(torch.as_tensor(value).float().mean())
            if not math.isfinite(number):
                name = key.removesuffix("_step")
                checkpoint = _last_checkpoint(trainer)
                kept = f"the last finite checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written"
                raise DivergedError(
                    f"{name} is {number} at {where}; training stopped ({kept}); lower model.optimizer.lr "
                    "or check the data"
                )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _last_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "last_model_path", "") if callback is not None else ""
    return path if path and Path(path).is_file() else None
