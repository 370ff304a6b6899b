"""What every colorization LightningModule shares: its colour space, `colorize`, and evaluation.

Families differ only in how they train. Validation and test are defined once here, so every
family is scored by exactly the same metric code (`colorization.metrics`).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.colorspaces import ColorSpace, get_colorspace
from colorization.errors import ConfigError
from colorization.metrics import colorization_metrics
from colorization.models.base import Network

OptimizerFactory = Callable[..., torch.optim.Optimizer]
"""An optimizer partial from the config (``model.optimizer``): called with ``params=``."""
SchedulerFactory = Callable[..., Any]
"""A learning-rate scheduler partial from the config (``model.scheduler``): called with ``optimizer=``."""


class ColorizerModule(L.LightningModule):
    """Base class: subclasses implement `colorize` and their own `training_step`.

    Subclasses whose network needs a particular input size say so with `native_size` (a fixed
    working resolution, e.g. 256 for Zhang et al.) or `size_multiple` (e.g. 2**depth for a U-Net);
    `colorize_full` uses them to colorize photos of any size. Networks are attributes named like
    their config key (``self.net`` for ``model.net``); `setup` checks the data's crops against
    every `Network` among them. Optimizers come from the config's partials (`use_optimizer`);
    a family with several optimizers says which parameters each trains (`optimizer_targets`).
    """

    native_size: int | None = None
    size_multiple: int = 1
    resize_mode: str = "bilinear"
    """How `colorize_full` shrinks L to the working size (an `F.interpolate` mode, antialiased)."""
    training_only_networks: tuple[str, ...] = ()
    """Networks that only see training crops (a GAN's discriminator): not checked for evaluation."""
    optimizer_factory: OptimizerFactory | None = None
    scheduler_factory: SchedulerFactory | None = None

    def __init__(self, colorspace: str = "lab") -> None:
        super().__init__()
        self.colorspace: ColorSpace = get_colorspace(colorspace)
        # validation runs every epoch and drives checkpointing: the cheap metrics; test: all of them
        self.val_metrics = colorization_metrics(prefix="val/")
        self.test_metrics = colorization_metrics(prefix="test/", full=True)
        # the model's Hydra config, stored in checkpoints so they can be rebuilt (see checkpoints.py)
        self.model_config: dict | None = None

    @abstractmethod
    def colorize(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, 3, H, W) Lab prediction carrying the input L."""

    @property
    def display_name(self) -> str:
        """A short name of the model for tables and UIs: its network's class (or its own) and colour space."""
        net = getattr(self, "net", None)
        owner = net if isinstance(net, torch.nn.Module) else self
        return f"{type(owner).__name__} ({self.colorspace.name})"

    @classmethod
    def checkpoint_config(cls, model_config: dict[str, Any], path: Path) -> dict[str, Any]:
        """The model config that rebuilds this module from its own checkpoint at `path` (before its
        state dict is loaded); the stored config as it is, unless a family's constructor reads files."""
        return model_config

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the network is run at for an input of (height, width)."""
        if self.native_size is not None:
            return self.native_size, self.native_size
        m = self.size_multiple
        return max(m, round(height / m) * m), max(m, round(width / m) * m)

    @torch.no_grad()
    def colorize_full(self, l: Tensor, **colorize_kwargs) -> Tensor:
        """Colorize photos of any size: (B, 1, H, W) L -> (B, 3, H, W) Lab with the original L.

        L is resized to `working_size`, colorized there, and the predicted ab is upsampled
        bilinearly and re-attached to the full-resolution L (as Zhang et al.'s release does).
        """
        size = self.working_size(*l.shape[-2:])
        if size == tuple(l.shape[-2:]):
            return self.colorize(l, **colorize_kwargs)
        small = F.interpolate(l, size=size, mode=self.resize_mode, align_corners=False, antialias=True)
        ab = self.colorize(small.clamp(0.0, 100.0), **colorize_kwargs)[:, 1:]
        ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([l, ab], dim=1)

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        l, ab = batch["l"], batch["ab"]
        prediction = self.colorize(l)
        metrics.update(prediction, torch.cat([l, ab], dim=1))
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=l.shape[0])
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
        checkpoint["colorization"] = {"model": self.model_config, "colorspace": self.colorspace.name}


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
