"""The training job behind `train.py`: validate, build, fit, test, report metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from colorization.checkpoints import build_colorizer
from colorization.devices import check_hardware
from colorization.instantiate import instantiate, instantiate_all
from colorization.loggers import finish_wandb

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
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    # Everything that can be wrong with the config or the data is checked here, before any training:
    # cheap config checks first, then the data (which may first have to be written).
    model = build_colorizer(cfg.model, cfg.colorspace.name)
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    datamodule.prepare_data()
    datamodule.setup("fit")
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
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update(_scalars(trainer.callback_metrics))
    if cfg.get("test", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not cfg.get("train", True):
            best = cfg.get("ckpt_path") or ""
        log.info("testing %s", best or "the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update(_scalars(trainer.callback_metrics))

    output_dir = Path(cfg.paths.output_dir)
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def _scalars(metrics: dict) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if torch.as_tensor(value).numel() == 1}
