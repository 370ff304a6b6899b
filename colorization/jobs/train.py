"""The training job behind `train.py`: validate, build, fit, test, report metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from colorization.data import SamplePhotosDataModule
from colorization.errors import ConfigError, DataError, SigtermError
from colorization.files.atomic import atomic_write_json
from colorization.instantiate import instantiate, instantiate_all
from colorization.jobs.callbacks import TimedProgressBar
from colorization.jobs.checkpointing import AtomicCheckpointIO
from colorization.jobs.devices import check_hardware
from colorization.jobs.run_dirs import (
    check_same_model,
    check_writable,
    display_path,
    is_own_checkpoint,
    resume_path,
    stored_model,
    wandb_run_id,
)
from colorization.jobs.threads import set_num_threads
from colorization.jobs.tracking import finish_wandb
from colorization.jobs.train_report import SavedCheckpoints, format_summary, summarize_run
from colorization.modules.build import build_module

log = logging.getLogger(__name__)


def train(cfg: DictConfig, model_name: str | None = None) -> dict[str, float]:
    """Run one training job; returns the final metrics (also written to ``metrics.json``).

    `model_name`, the chosen model config (``pix2pix``), names the model in checkpoints and
    tables. Ends with the run's summary on the terminal (`colorization.jobs.train_report`). Closes the
    W&B run at the end, even after an error, so that every job of a multirun gets its own run.
    """
    try:
        return _train(cfg, model_name)
    finally:
        finish_wandb()


def build_trainer(trainer_cfg: DictConfig, **kwargs) -> L.Trainer:
    """The Lightning Trainer of a ``conf/trainer`` config; `num_threads` is the project's own key, not the Trainer's.

    A shown progress bar is the `TimedProgressBar` unless the callbacks bring their own."""
    settings = OmegaConf.to_container(trainer_cfg, resolve=True)
    settings.pop("num_threads", None)
    callbacks = list(kwargs.pop("callbacks", None) or [])
    if settings.get("enable_progress_bar", True) and not any(isinstance(c, ProgressBar) for c in callbacks):
        callbacks.append(TimedProgressBar())
    return instantiate(settings, callbacks=callbacks, **kwargs)


def use_threads(trainer: L.Trainer, num_threads: int | None, num_workers: int) -> int:
    """Set this process's CPU threads (`colorization.jobs.threads`): the node's training processes (one per
    device) share its cores."""
    return set_num_threads(num_threads, num_workers, processes=trainer.num_devices)


def _train(cfg: DictConfig, model_name: str | None) -> dict[str, float]:
    check_hardware(cfg.trainer)
    check_run_settings(cfg)
    output_dir = Path(cfg.paths.output_dir)
    check_writable(output_dir)
    checkpoint = resume_path(cfg.get("ckpt_path"), output_dir)
    if checkpoint is not None:
        check_same_model(stored_model(checkpoint), cfg.model, cfg.colorspace.name, checkpoint)
        if is_own_checkpoint(checkpoint, output_dir):
            resume_loggers(cfg, output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the saved config

    # Everything that can be wrong with the config or the data is checked here, before any training:
    # cheap config checks first, then the data (which may first have to be written).
    model = build_module(cfg.model, cfg.colorspace.name, model_name)
    datamodule: L.LightningDataModule = instantiate(cfg.data, key="data")
    callbacks = instantiate_all(cfg.get("callbacks"))
    for callback in callbacks:
        if isinstance(callback, L.pytorch.callbacks.ModelCheckpoint) and callback.dirpath:
            check_writable(callback.dirpath, "callbacks.model_checkpoint.dirpath")
    loggers = instantiate_all(cfg.get("logger"))
    # checkpoints are written atomically and read without unpickling (checkpointing.AtomicCheckpointIO)
    plugins = [*(instantiate(plugin) for plugin in cfg.trainer.get("plugins") or []), AtomicCheckpointIO()]
    trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)
    threads = use_threads(trainer, cfg.trainer.get("num_threads"), int(cfg.data.get("num_workers", 0)))
    datamodule.prepare_data()
    datamodule.setup("fit")
    if cfg.get("train", True) and len(getattr(datamodule, "val_set", ())) == 0:
        raise ConfigError(
            "the data leave no validation images (data.val_fraction, data.limit); the best checkpoint and "
            "optimized_metric need val/ metrics"
        )
    # only a job that passed every check above opens a run in the loggers (W&B, ...)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if rank_zero_only.rank == 0:  # known from the environment before DDP starts its processes
        log.info(
            "%s on %s%s: batch size: %d per device x %d device(s) x %d node(s) = %d global, %s, %d epoch(s), "
            "%d CPU thread(s) per process",
            model.display_name,
            display_path(getattr(datamodule, "root", type(datamodule).__name__)),
            _split_sizes(datamodule),
            cfg.data.batch_size,
            trainer.num_devices,
            trainer.num_nodes,
            cfg.data.batch_size * trainer.world_size,
            trainer.strategy.root_device,
            trainer.max_epochs,
            threads,
        )

    metrics: dict[str, float] = {}
    saved = SavedCheckpoints()
    if cfg.get("train", True):
        fit(trainer, model, datamodule, checkpoint, output_dir)
        metrics.update(_scalars(trainer.callback_metrics))
        # read now: testing a checkpoint restores the checkpoint callback's state as it was saved
        saved = SavedCheckpoints.of(trainer)
    if cfg.get("test", True):
        best = str(saved.best or "") if cfg.get("train", True) else str(checkpoint)
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update(_scalars(trainer.callback_metrics))

    if trainer.is_global_zero:
        atomic_write_json(output_dir / "metrics.json", metrics)
        tested = str(checkpoint) if checkpoint is not None and not cfg.get("train", True) else None
        builtin = isinstance(datamodule, SamplePhotosDataModule)
        summary = summarize_run(trainer, metrics, output_dir, saved, tested=tested, builtin_photos=builtin)
        print(format_summary(summary), flush=True)
    return metrics


def _split_sizes(datamodule: L.LightningDataModule) -> str:
    """`` (228 train, 12 val, 48 test images)`` for a datamodule that holds its splits as datasets; else empty."""
    sizes = [(name, getattr(datamodule, f"{name}_set", None)) for name in ("train", "val", "test")]
    known = [f"{len(dataset)} {name}" for name, dataset in sizes if dataset is not None]
    return f" ({', '.join(known)} images)" if known else ""


def check_run_settings(cfg: DictConfig) -> None:
    """Ranges of the run's own settings that Lightning would accept silently (`ConfigError`)."""
    max_epochs = cfg.trainer.get("max_epochs")
    if cfg.get("train", True) and (isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1):
        raise ConfigError(f"trainer.max_epochs={max_epochs!r} is out of range; expected an integer >= 1")
    if not cfg.get("train", True) and cfg.get("test", True) and not cfg.get("ckpt_path"):
        raise ConfigError("train=false tests a trained model: set ckpt_path=<checkpoint>")
    val_fraction = cfg.data.get("val_fraction")
    if cfg.get("train", True) and val_fraction is not None and val_fraction <= 0:
        raise ConfigError(
            f"data.val_fraction={val_fraction!r} leaves no validation images, but the best checkpoint and "
            "optimized_metric need val/ metrics; expected a fraction in (0, 1)"
        )


def fit(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    checkpoint: Path | None,
    output_dir: Path,
) -> None:
    """`trainer.fit`, resuming from `checkpoint`; a SIGTERM ends it as `SigtermError` (exit 143) after
    ``last.ckpt`` was written, and a run that ends without ``last.ckpt`` is an error, not a success."""
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint)
    except SIGTERMException:
        last = getattr(trainer.checkpoint_callback, "last_model_path", "") or "no checkpoint"
        raise SigtermError(
            f"SIGTERM at epoch {trainer.current_epoch}, step {trainer.global_step}: saved {last}; "
            f"continue with: python train.py resume={output_dir}"
        ) from None
    callback = trainer.checkpoint_callback
    if callback is not None and callback.save_last and trainer.is_global_zero:
        last = Path(callback.dirpath or output_dir) / "last.ckpt"
        if not last.is_file():
            raise DataError(f"{last}: training ended but the checkpoint was not written (is the disk full?)")


def resume_loggers(cfg: DictConfig, output_dir: Path) -> None:
    """A resumed run logs into the interrupted run's W&B run (by its id) instead of a new one."""
    wandb = (cfg.get("logger") or {}).get("wandb")
    run_id = wandb_run_id(output_dir)
    if wandb is not None and run_id and not wandb.get("id"):
        with open_dict(wandb):
            wandb.id, wandb.resume = run_id, "allow"


def _scalars(metrics: dict) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if torch.as_tensor(value).numel() == 1}
