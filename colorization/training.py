"""The training job behind `train.py`: validate, build, fit, test, report metrics."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from colorization.atomic import atomic_write_json
from colorization.checkpointing import AtomicCheckpointIO
from colorization.checkpoints import build_colorizer
from colorization.devices import check_hardware
from colorization.errors import ConfigError, DataError, SigtermError
from colorization.instantiate import instantiate, instantiate_all
from colorization.loggers import finish_wandb
from colorization.runs import check_same_model, check_writable, resume_path, stored_model, wandb_run_id

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job; returns the final metrics (also written to ``metrics.json``).

    Closes the W&B run at the end, even after an error, so that every job of a multirun gets its own run.
    """
    try:
        return _train(cfg)
    finally:
        finish_wandb()


def _train(cfg: DictConfig) -> dict[str, float]:
    check_hardware(cfg.trainer)
    check_run_settings(cfg)
    output_dir = Path(cfg.paths.output_dir)
    check_writable(output_dir)
    checkpoint = resume_path(cfg.get("ckpt_path"), output_dir)
    if checkpoint is not None:
        check_same_model(stored_model(checkpoint), cfg.model, cfg.colorspace.name, checkpoint)
        if _is_own_run(checkpoint, output_dir):
            resume_loggers(cfg, output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    # Everything that can be wrong with the config or the data is checked here, before any training:
    # cheap config checks first, then the data (which may first have to be written).
    model = build_colorizer(cfg.model, cfg.colorspace.name)
    datamodule: L.LightningDataModule = instantiate(cfg.data, key="data")
    callbacks = instantiate_all(cfg.get("callbacks"))
    for callback in callbacks:
        if isinstance(callback, L.pytorch.callbacks.ModelCheckpoint) and callback.dirpath:
            check_writable(callback.dirpath, "callbacks.model_checkpoint.dirpath")
    loggers = instantiate_all(cfg.get("logger"))
    # checkpoints are written atomically and read without unpickling (checkpointing.AtomicCheckpointIO)
    plugins = [*(instantiate(plugin) for plugin in cfg.trainer.get("plugins") or []), AtomicCheckpointIO()]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=plugins)
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
    log.info(
        "batch size: %d per device x %d device(s) x %d node(s) = %d global",
        cfg.data.batch_size,
        trainer.num_devices,
        trainer.num_nodes,
        cfg.data.batch_size * trainer.world_size,
    )

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        fit(trainer, model, datamodule, checkpoint, output_dir)
        metrics.update(_scalars(trainer.callback_metrics))
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not cfg.get("train", True):
            best = str(checkpoint)
        log.info("testing %s", best or "the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update(_scalars(trainer.callback_metrics))

    if trainer.is_global_zero:
        atomic_write_json(output_dir / "metrics.json", metrics)
    return metrics


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


def _is_own_run(checkpoint: Path, output_dir: Path) -> bool:
    return checkpoint.resolve().is_relative_to(output_dir.resolve())


def resume_loggers(cfg: DictConfig, output_dir: Path) -> None:
    """A resumed run logs into the interrupted run's W&B run (by its id) instead of a new one."""
    wandb = (cfg.get("logger") or {}).get("wandb")
    run_id = wandb_run_id(output_dir)
    if wandb is not None and run_id and not wandb.get("id"):
        with open_dict(wandb):
            wandb.id, wandb.resume = run_id, "allow"


def _scalars(metrics: dict) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if torch.as_tensor(value).numel() == 1}
