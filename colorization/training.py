"""The training job behind `train.py`: validate, build, fit, test, report metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from colorization.checkpoints import build_colorizer
from colorization.errors import ConfigError
from colorization.instantiate import instantiate

log = logging.getLogger(__name__)

GPU_ACCELERATORS = ("gpu", "cuda")


def check_hardware(trainer_cfg: DictConfig) -> None:
    """Fail early, in one line, when the trainer asks for hardware this machine lacks."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in GPU_ACCELERATORS and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator!r} needs a CUDA GPU, but none is available "
            "(torch.cuda.is_available() is False); use trainer=cpu or trainer=default"
        )
    devices = trainer_cfg.get("devices", "auto")
    if accelerator in GPU_ACCELERATORS and isinstance(devices, int) and devices > torch.cuda.device_count():
        raise ConfigError(f"trainer.devices={devices} but only {torch.cuda.device_count()} CUDA GPU(s) are visible")


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every entry of a callbacks/logger group (entries set to null are skipped)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job; returns the final metrics (also written to ``metrics.json``)."""
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
