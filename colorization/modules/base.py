"""What every colorization LightningModule shares: its colour space, `colorize`, and evaluation.

Families differ only in how they train. Validation and test are defined once here, so every
family is scored by exactly the same metric code (`colorization.metrics`).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from colorization.colorspaces import ColorSpace, get_colorspace
from colorization.data.batches import to_lab_batch
from colorization.metrics import colorization_metrics

# Lightning warns whenever a module converting batches after transfer meets a DataModule; here that is
# by design (DataModules hand out uint8, the module converts on its device), not a conflict
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`.*")


class ColorizerModule(L.LightningModule):
    """Base class: subclasses implement `colorize` and their own `training_step`/optimizers.

    Subclasses whose network needs a particular input size say so with `native_size` (a fixed
    working resolution, e.g. 256 for Zhang et al.) or `size_multiple` (e.g. 2**depth for a U-Net);
    `colorize_full` uses them to colorize photos of any size.
    """

    native_size: int | None = None
    size_multiple: int = 1
    resize_mode: str = "bilinear"
    """How `colorize_full` shrinks L to the working size (an `F.interpolate` mode, antialiased)."""

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

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["colorization"] = {"model": self.model_config, "colorspace": self.colorspace.name}
