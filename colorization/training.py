"""The training job behind `train.py`: validate, build, fit, test, report metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from colorization.checkpoints import build_colorizer
from colorization.data import SamplePhotosDataModule
from colorization.devices import check_hardware
from colorization.instantiate import instantiate, instantiate_all
from colorization.loggers import finish_wandb
from colorization.run_dirs import display_path
from colorization.run_summary import SavedCheckpoints, format_summary, summarize_run

log = logging.getLogger(__name__)


def train(cfg: DictConfig, model_name: str | None = None) -> dict[str, float]:
    """Run one training job; returns the final metrics (also written to ``metrics.json``).

    `model_name`, the chosen model config (``pix2pix``), names the model in checkpoints and
    tables. Ends with the run's summary on the terminal (`colorization.run_summary`). Closes the
    W&B run at the end, even after an error, so that every job of a multirun gets its own run.
    """
    try:
        return _train(cfg, model_name)
    finally:
        finish_wandb()


def _train(cfg: DictConfig, model_name: str | None) -> dict[str, float]:
    check_hardware(cfg.trainer)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the saved config

    # Everything that can be wrong with the config or the data is checked here, before any training:
    # cheap config checks first, then the data (which may first have to be written).
    model = build_colorizer(cfg.model, cfg.colorspace.name, model_name)
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    callbacks = instantiate_all(cfg.get("callbacks"))
    loggers = instantiate_all(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    datamodule.prepare_data()
    datamodule.setup("fit")
    # only a job that passed every check above opens a run in the loggers (W&B, ...)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if rank_zero_only.rank == 0:  # known from the environment before DDP starts its processes
        log.info(
            "%s on %s%s: batch size: %d per device x %d device(s) x %d node(s) = %d global, %s, %d epoch(s)",
            model.display_name,
            display_path(getattr(datamodule, "root", type(datamodule).__name__)),
            _split_sizes(datamodule),
            cfg.data.batch_size,
            trainer.num_devices,
            trainer.num_nodes,
            cfg.data.batch_size * trainer.world_size,
            trainer.strategy.root_device,
            trainer.max_epochs,
        )

    metrics: dict[str, float] = {}
    saved = SavedCheckpoints()
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics.update(_scalars(trainer.callback_metrics))
        # read now: testing a checkpoint restores the checkpoint callback's state as it was saved
        saved = SavedCheckpoints.of(trainer)
    if cfg.get("test", True):
        best = str(saved.best or "") if cfg.get("train", True) else cfg.get("ckpt_path") or ""
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
        metrics.update(_scalars(trainer.callback_metrics))

    output_dir = Path(cfg.paths.output_dir)
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        tested = cfg.get("ckpt_path") if not cfg.get("train", True) else None
        builtin = isinstance(datamodule, SamplePhotosDataModule)
        summary = summarize_run(trainer, datamodule, metrics, output_dir, saved, tested=tested, builtin_photos=builtin)
        print(format_summary(summary), flush=True)
    return metrics


def _split_sizes(datamodule: L.LightningDataModule) -> str:
    """`` (228 train, 12 val, 48 test images)`` for a datamodule that holds its splits as datasets; else empty."""
    sizes = [(name, getattr(datamodule, f"{name}_set", None)) for name in ("train", "val", "test")]
    known = [f"{len(dataset)} {name}" for name, dataset in sizes if dataset is not None]
    return f" ({', '.join(known)} images)" if known else ""


def _scalars(metrics: dict) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if torch.as_tensor(value).numel() == 1}
