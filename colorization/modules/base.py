"""What every colorization LightningModule shares: the colorizer it trains, and evaluation.

A family's module trains the networks of an inference colorizer (`colorization.inference`): the
colorizer is what runs at validation, test and inference, the module adds losses, optimizers and
training steps. Validation and test are defined once here, so every family is scored by exactly
the same metric code (`colorization.metrics.image`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from colorization.color.spaces import ColorSpace
from colorization.data.batches import to_lab_batch
from colorization.errors import ConfigError
from colorization.inference.base import Colorizer
from colorization.metrics.image import baseline_metrics, colorization_metrics, gray_lab
from colorization.networks.base import Network

OptimizerFactory = Callable[..., torch.optim.Optimizer]
"""An optimizer partial from the config (``model.optimizer``): called with ``params=``."""
SchedulerFactory = Callable[..., Any]
"""A learning-rate scheduler partial from the config (``model.scheduler``): called with ``optimizer=``."""


class ColorizerModule(L.LightningModule):
    """Base class: subclasses build their colorizer (`use_colorizer`) and implement `training_step`.

    The colorizer's networks are this module's children under the names its checkpoints use
    (``self.net``, ``self.generator``), so its state dict holds them once; the colorizer itself is
    not a child (its networks would be stored twice). `setup` checks the data's crops against every
    `Network` child. Optimizers come from the config's partials (`use_optimizer`); a family with
    several optimizers says which parameters each trains (`optimizer_targets`).
    """

    training_only_networks: tuple[str, ...] = ()
    """Networks that only see training crops (a GAN's discriminator): not checked for evaluation."""
    optimizer_factory: OptimizerFactory | None = None
    scheduler_factory: SchedulerFactory | None = None

    def __init__(self) -> None:
        super().__init__()
        # validation runs every epoch and drives checkpointing: the cheap metrics; test: all of them
        self.val_metrics = colorization_metrics(prefix="val/")
        self.test_metrics = colorization_metrics(prefix="test/", full=True)
        # the gray baseline on the same batches, in the same pass: the run's summary reads it from the loop
        self.val_baseline = baseline_metrics(prefix="val/")
        self.test_baseline = baseline_metrics(prefix="test/")
        # the model's Hydra config, stored in checkpoints so they can be rebuilt (see `colorization.modules.build`)
        self.model_config: dict | None = None

    def use_colorizer(self, colorizer: Colorizer, **names: str) -> None:
        """Train `colorizer`: its networks become this module's children, named as its attributes unless
        `names` renames them (``net="generator"``: the colorizer's ``net`` is this module's ``generator``)."""
        object.__setattr__(self, "colorizer", colorizer)  # not a child: its networks are, under their own names
        self.colorizer_networks = {}
        for name, child in colorizer.named_children():
            setattr(self, names.get(name, name), child)
            self.colorizer_networks[name] = names.get(name, name)

    def colorizer_config(self) -> dict[str, Any] | None:
        """The config (``_target_`` + settings) that rebuilds `self.colorizer` for inference; None when
        the module was built without a config (by hand) and so cannot be rebuilt."""
        raise NotImplementedError(f"{type(self).__name__} does not say how its colorizer is rebuilt")

    # ---- what the colorizer knows ----------------------------------------------------------

    @property
    def colorspace(self) -> ColorSpace:
        return self.colorizer.colorspace

    @property
    def native_size(self) -> int | None:
        return self.colorizer.native_size

    @property
    def size_multiple(self) -> int:
        return self.colorizer.size_multiple

    @property
    def min_size(self) -> int:
        return self.colorizer.min_size

    @property
    def resize_mode(self) -> str:
        return self.colorizer.resize_mode

    @property
    def config_name(self) -> str | None:
        """The chosen model config (``model=pix2pix``: "pix2pix"), which names the model in tables."""
        return self.colorizer.config_name

    @config_name.setter
    def config_name(self, name: str | None) -> None:
        self.colorizer.config_name = name

    @property
    def trained_size(self) -> int | None:
        return self.colorizer.trained_size

    @trained_size.setter
    def trained_size(self, size: int | None) -> None:
        self.colorizer.trained_size = size

    @property
    def display_name(self) -> str:
        return self.colorizer.display_name

    def colorize(self, l: Tensor, **colorize_kwargs: Any) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, 3, H, W) Lab, by the colorizer."""
        return self.colorizer.colorize(l, **colorize_kwargs)

    def colorize_full(self, l: Tensor, size: int | None = None, precision: str = "fp32", **colorize_kwargs) -> Tensor:
        """Photos of any size, by the colorizer (`colorization.inference.base.Colorizer.colorize_full`)."""
        return self.colorizer.colorize_full(l, size, precision, **colorize_kwargs)

    def train(self, mode: bool = True) -> ColorizerModule:
        super().train(mode)
        self.colorizer.train(mode)  # its children switched with this module's; its own flag follows
        return self

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """uint8 batches (``lab_uint8`` / ``rgb_uint8``) become float ``l``/``ab`` here, on the device."""
        return to_lab_batch(batch) if isinstance(batch, dict) else batch

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        metrics, baseline = (
            (self.val_metrics, self.val_baseline) if stage == "val" else (self.test_metrics, self.test_baseline)
        )
        l, ab = batch["l"], batch["ab"]
        prediction = self.colorize(l)
        target = torch.cat([l, ab], dim=1)
        metrics.update(prediction, target)
        baseline.update(gray_lab(l), target)
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=l.shape[0])
        self.log_dict(baseline, on_step=False, on_epoch=True, batch_size=l.shape[0])
        return prediction

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    # ---- set-up and optimizers -------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Check the datamodule's crop sizes against every network before any training or evaluation."""
        datamodule = self.trainer.datamodule
        if datamodule is None:
            return
        for name, network in self.named_children():
            if not isinstance(network, Network):
                continue
            keys = ("crop_size", "eval_crop_size")
            if name in self.training_only_networks:
                keys = ("crop_size",) if stage == "fit" else ()
            for key in keys:
                size = getattr(datamodule, key, None)
                if size is not None and not network.fits(size):
                    raise ConfigError(misfit_message(f"data.{key}", size, f"model.{name}", name, network))
        crop = getattr(datamodule, "crop_size", None)
        if stage == "fit" and crop is not None:
            self.trained_size = int(crop)
            # one training-size image: the model summary shows each network's sizes and counts its FLOPs
            self.example_input_array = torch.zeros(1, 1, crop, crop)

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> the model's output; families that train on another output override it."""
        return self.colorize(l)

    def use_optimizer(self, optimizer: OptimizerFactory | None, scheduler: SchedulerFactory | None = None) -> None:
        """Keep the config's optimizer (and scheduler) partial after checking its settings."""
        check_optimizer("model.optimizer", optimizer)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler

    def optimizer_targets(self) -> list[tuple[OptimizerFactory | None, list[nn.Parameter]]]:
        """(optimizer partial, parameters it trains) for each optimizer, in the order `training_step` uses them."""
        return [(self.optimizer_factory, [p for p in self.parameters() if p.requires_grad])]

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> Any | None:
        """The learning-rate scheduler of `optimizer` (None: a constant rate)."""
        return None if self.scheduler_factory is None else self.scheduler_factory(optimizer=optimizer)

    def configure_optimizers(self) -> Any:
        optimizers = []
        for factory, params in self.optimizer_targets():
            if factory is None:
                raise ConfigError("model.optimizer is not set; training needs one (see conf/model/)")
            optimizers.append(factory(params=params))
        schedulers = [s for s in map(self.make_scheduler, optimizers) if s is not None]
        if len(optimizers) == 1 and not schedulers:
            return optimizers[0]
        return optimizers, schedulers

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["colorization"] = {
            "model": self.model_config,
            "colorspace": self.colorspace.name,
            "name": self.config_name,
            "trained_size": self.trained_size,
            # what `colorization.inference.loading` rebuilds for inference, without this module
            "colorizer": (
                {"config": config, "networks": self.colorizer_networks}
                if (config := self.colorizer_config()) is not None
                else None
            ),
        }


def misfit_message(size_key: str, size: int, network_key: str, role: str, network: Network) -> str:
    """One line saying that crops of `size` (`size_key`) do not fit `network` (config `network_key`)."""
    need = f"{network.requirement()} pixels"
    if network.size_setting is None:
        return f"{size_key}={size} does not fit the {role}: {network_key} needs {need}; change {size_key}"
    setting = f"{network_key}.{network.size_setting}"
    value = getattr(network, network.size_setting, "?")
    return f"{size_key}={size} does not fit the {role}: {setting}={value} needs {need}; change {size_key} or {setting}"


def check_optimizer(key: str, factory: OptimizerFactory | None) -> None:
    """Refuse a learning rate <= 0 or not finite, or Adam-style betas outside [0, 1), in an optimizer
    partial, naming `key`."""
    settings = getattr(factory, "keywords", {})
    lr, betas = settings.get("lr"), settings.get("betas")
    if lr is not None and not (isinstance(lr, int | float) and 0 < lr < math.inf):
        raise ConfigError(f"{key}.lr={lr!r} must be a positive finite number")
    if betas is not None and (len(betas) != 2 or not all(0 <= b < 1 for b in betas)):
        raise ConfigError(f"{key}.betas={list(betas)!r} must be two numbers in [0, 1)")
