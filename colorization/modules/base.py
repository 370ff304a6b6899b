"""What every colorization LightningModule shares: its colour space, `colorize`, and evaluation.

Families differ only in how they train. Validation and test are defined once here, so every
family is scored by exactly the same metric code (`colorization.metrics.image`).
"""

from __future__ import annotations

import inspect
import math
import warnings
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color.spaces import ColorSpace, get_colorspace
from colorization.data.batches import to_lab_batch
from colorization.errors import ConfigError, DataError
from colorization.inference.runtime import autocast
from colorization.metrics.image import colorization_metrics
from colorization.networks.base import Network

OptimizerFactory = Callable[..., torch.optim.Optimizer]
"""An optimizer partial from the config (``model.optimizer``): called with ``params=``."""
SchedulerFactory = Callable[..., Any]
"""A learning-rate scheduler partial from the config (``model.scheduler``): called with ``optimizer=``."""

# Lightning warns whenever a module converting batches after transfer meets a DataModule; here that is
# by design (DataModules hand out uint8, the module converts on its device), not a conflict
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`.*")


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
    trained_size: int | None = None
    """The side of the crops the model was trained on (recorded in its checkpoints); the colorize
    command runs a model without a `native_size` at that size unless told otherwise."""
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
        # the model's Hydra config, stored in checkpoints so they can be rebuilt (see checkpoints.py),
        # and the name of that config (``model=pix2pix``: "pix2pix"), which names the model in tables
        self.model_config: dict | None = None
        self.config_name: str | None = None

    @abstractmethod
    def colorize(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, 3, H, W) Lab prediction carrying the input L."""

    @property
    def display_name(self) -> str:
        """A short name of the model for tables and UIs: its config's name (``pix2pix``, ``eccv16``),
        with the colour space when it is not Lab (``model2 (hls)``). A model built without a config
        name (an old checkpoint, a config given as a dict) is named after `family_name`."""
        name = self.config_name or self.family_name
        return name if self.colorspace.name == "lab" else f"{name} ({self.colorspace.name})"

    @property
    def family_name(self) -> str:
        """The model's name when it has no config name: its network's class (or its own)."""
        net = getattr(self, "net", None)
        return type(net if isinstance(net, torch.nn.Module) else self).__name__

    @classmethod
    def checkpoint_config(cls, model_config: dict[str, Any], path: Path) -> dict[str, Any]:
        """The model config that rebuilds this module from its own checkpoint at `path` (before its
        state dict is loaded); the stored config as it is, unless a family's constructor reads files."""
        return model_config

    def working_size(self, height: int, width: int, size: int | None = None) -> tuple[int, int]:
        """The (height, width) the network is run at for an input of (height, width); see `working_size`."""
        return working_size(height, width, self.native_size, self.size_multiple, size)

    def colorize_full(self, l: Tensor, size: int | None = None, precision: str = "fp32", **colorize_kwargs) -> Tensor:
        """Colorize photos of any size: (B, 1, H, W) L -> (B, 3, H, W) float32 Lab with the original L.

        L is resized to `working_size` (`size` overrides it), colorized there, and the predicted
        ab is upsampled bilinearly and re-attached to the full-resolution L (as Zhang et al.'s
        release does). Runs under `torch.inference_mode`; `precision` ``bf16`` runs the network
        under bfloat16 autocast (`colorization.inference.runtime`). The result is an inference tensor: read
        it, do not hand it to autograd. Bad input (shape, dtype, value range, keywords this model
        does not read) raises a one-line `DataError` or `ConfigError` (`check_colorize_input`).
        """
        check_colorize_input(self, l, colorize_kwargs)
        with torch.inference_mode(), autocast(l.device, precision):
            work = self.working_size(*l.shape[-2:], size)
            if work == tuple(l.shape[-2:]):
                return self.colorize(l, **colorize_kwargs).float()
            ab = self.colorize(shrink_l(l, work, self.resize_mode), **colorize_kwargs)[:, 1:].float()
            return attach_ab(l.float(), ab)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """uint8 batches (``lab_uint8`` / ``rgb_uint8``) become float ``l``/``ab`` here, on the device."""
        return to_lab_batch(batch) if isinstance(batch, dict) else batch

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
        }


L_RANGE_TOLERANCE = 1e-3
"""How far L may stray outside [0, 100] (rounding in colour conversions) before it is refused."""


def check_colorize_input(model: ColorizerModule, l: Tensor, colorize_kwargs: dict[str, Any]) -> None:
    """Refuse what `colorize_full` cannot colorize correctly, in one line saying what was expected.

    `l` must be a floating-point (B, 1, H, W) tensor of CIE L* in [0, 100]; uint8 input (0..255)
    is refused with the conversion that fixes it. L whose largest value is above 0 and at most 1
    looks like [0, 1] input, but so does a nearly black photo (a night-sky crop of L 0..0.8), so it
    gets a warning with the fix rather than an error. `colorize_kwargs` must be keywords the
    model's `colorize` reads (only SIGGRAPH17 reads ``hints``).
    """
    accepted = inspect.signature(model.colorize).parameters
    unknown = [key for key in colorize_kwargs if key not in accepted]
    if unknown:
        readers = " (only SIGGRAPH17 reads hints)" if "hints" in unknown else ""
        raise ConfigError(
            f"{model.display_name} takes no {', '.join(f'{key}=' for key in unknown)} keyword{readers}; "
            f"it reads {[key for key in accepted if key != 'l'] or 'none'}"
        )
    if not isinstance(l, Tensor):
        raise DataError(f"expected L as a torch.Tensor of shape (B, 1, H, W); got {type(l).__name__}")
    if l.dim() != 4 or l.shape[1] != 1:
        fix = "; add the batch dimension with l[None]" if l.dim() == 3 and l.shape[0] == 1 else ""
        raise DataError(f"expected L of shape (B, 1, H, W); got {tuple(l.shape)}{fix}")
    if not l.is_floating_point():
        fix = " (uint8 0..255: use l.float() * 100 / 255)" if l.dtype == torch.uint8 else ""
        raise DataError(f"expected L as floating point in [0, 100]; got {l.dtype}{fix}")
    if l.numel() == 0:
        raise DataError(f"expected at least one pixel; got L of shape {tuple(l.shape)}")
    low, high = (float(v) for v in torch.aminmax(l.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DataError("L holds NaN or infinite values; expected L in [0, 100]")
    if low < -L_RANGE_TOLERANCE or high > 100 + L_RANGE_TOLERANCE:
        raise DataError(f"expected L in [0, 100]; got values in [{low:.4g}, {high:.4g}]")
    if 0 < high <= 1:
        warnings.warn(
            f"L holds values in [{low:.4g}, {high:.4g}]: a nearly black photo, or L in [0, 1] given for [0, 100] "
            "(then use l * 100)",
            stacklevel=3,
        )


def working_size(
    height: int, width: int, native_size: int | None, size_multiple: int, size: int | None = None
) -> tuple[int, int]:
    """The (height, width) a network runs at for a photo of (height, width).

    A network with a `native_size` runs at that square (`size` replaces it); any other runs at
    the photo's own size, or scaled so that its longer side is `size` (never enlarged), each
    side rounded to a multiple of `size_multiple`.
    """
    if native_size is not None:
        side = size or native_size
        return side, side
    m = size_multiple
    if size and size < max(height, width):
        scale = size / max(height, width)
        height, width = round(height * scale), round(width * scale)
    # integer arithmetic (halves round up), so that exported graphs keep H and W symbolic
    return max(m, (height + m // 2) // m * m), max(m, (width + m // 2) // m * m)


def shrink_l(l: Tensor, size: tuple[int, int], mode: str, always: bool = False) -> Tensor:
    """(B, 1, H, W) L -> (B, 1, *size) L in [0, 100], resized with antialiasing (`mode`: an interpolate mode).

    `always` resizes even to the same size (an identity), for exported graphs whose sizes are symbolic.
    """
    if not always and tuple(l.shape[-2:]) == tuple(size):
        return l
    return F.interpolate(l, size=size, mode=mode, align_corners=False, antialias=True).clamp(0.0, 100.0)


def attach_ab(l: Tensor, ab: Tensor, always: bool = False) -> Tensor:
    """Full-resolution (B, 1, H, W) L and (B, 2, h, w) ab -> (B, 3, H, W) Lab, ab upsampled bilinearly.

    `always`: as for `shrink_l`.
    """
    if always or tuple(ab.shape[-2:]) != tuple(l.shape[-2:]):
        ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([l, ab], dim=1)


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
