"""What every colorization LightningModule shares: its colour space, `colorize`, and evaluation.

Families differ only in how they train. Validation and test are defined once here, so every
family is scored by exactly the same metric code (`colorization.metrics`).
"""

from __future__ import annotations

from abc import abstractmethod

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from colorization.colorspaces import ColorSpace, get_colorspace
from colorization.metrics import colorization_metrics


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

    def working_size(self, height: int, width: int, size: int | None = None) -> tuple[int, int]:
        """The (height, width) the network is run at for an input of (height, width); see `working_size`."""
        return working_size(height, width, self.native_size, self.size_multiple, size)

    @torch.no_grad()
    def colorize_full(self, l: Tensor, size: int | None = None, **colorize_kwargs) -> Tensor:
        """Colorize photos of any size: (B, 1, H, W) L -> (B, 3, H, W) Lab with the original L.

        L is resized to `working_size` (`size` overrides it), colorized there, and the predicted
        ab is upsampled bilinearly and re-attached to the full-resolution L (as Zhang et al.'s
        release does).
        """
        work = self.working_size(*l.shape[-2:], size)
        if work == tuple(l.shape[-2:]):
            return self.colorize(l, **colorize_kwargs)
        ab = self.colorize(shrink_l(l, work, self.resize_mode), **colorize_kwargs)[:, 1:]
        return attach_ab(l, ab)

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
