"""Zhang et al.'s colorizers as LightningModules: how ECCV16 (classification) and SIGGRAPH17 (user-guided) train.

Inference is `colorization.inference.zhang`'s (the release's: L resized to `native_size`, ab
predicted there and re-attached to the full-resolution L). Both load the official weights strictly
with ``weights=PATH`` (or a release name), and train from scratch:

- ECCV16: cross-entropy against soft-encoded targets over the ab bins, each pixel weighted by the
  rebalancing weight of its nearest bin; decoding by the annealed mean with `temperature`.
- SIGGRAPH17: random user hints (`colorization.color.hints.sample_hints`); cross-entropy on the 529-class
  grid at 1/4 resolution plus `regression_weight` x smooth-L1 on the regressed ab; `stage` picks
  which of the two losses trains the shared layers (classification first, then regression).

Validation and test are `ColorizerModule`'s, so the metrics are those of every other family.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from colorization.color.ab_bins import (
    REBALANCE_LAMBDA,
    SOFT_NEIGHBOURS,
    SOFT_SIGMA,
    ABQuantizer,
    gamut_centres,
    rebalancing_weights,
    saturated_images,
    smooth_prior,
)
from colorization.color.hints import MAX_PATCH, STOP_PROBABILITY, sample_hints
from colorization.color.spaces import AB_SCALE
from colorization.data.ab_prior import count_bins_in_batches
from colorization.errors import ConfigError, check_choice
from colorization.files.weights import read_state_dict
from colorization.inference.base import Colorizer
from colorization.inference.loading import resolve
from colorization.inference.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer
from colorization.instantiate import target_of
from colorization.modules.base import ColorizerModule, OptimizerFactory, SchedulerFactory
from colorization.networks.zhang import ECCV16_BINS

log = logging.getLogger(__name__)

NETWORK_PREFIX = "net."
"""The network's entries in a checkpoint's state dict (``weights`` may name one of our checkpoints)."""
STAGES = ("classification", "regression")
INFERENCE_SETTINGS = ("colorspace", "native_size", "temperature")
"""Settings of the colorizer (`colorization.inference.zhang`), not of training."""


class ZhangModule(ColorizerModule):
    """What both share: the optimizer and class rebalancing.

    Subclasses build their colorizer, set `self.quantizer` (the bins their classification head
    predicts) and call `_init_rebalancing`.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        rebalance: bool = True,
        rebalance_mix: float = REBALANCE_LAMBDA,
        sigma: float = SOFT_SIGMA,
    ) -> None:
        super().__init__()
        if not 0.0 <= rebalance_mix <= 1.0:
            raise ConfigError(f"model.rebalance_mix={rebalance_mix!r}: expected a weight in [0, 1]")
        self.rebalance, self.rebalance_mix, self.sigma = bool(rebalance), float(rebalance_mix), float(sigma)
        self.use_optimizer(optimizer, scheduler)

    def zhang_config(self, colorizer: type[Colorizer], **settings: Any) -> dict[str, Any]:
        """The config of this module's colorizer: `colorizer`'s target, the shared settings and `settings`."""
        return {
            "_target_": target_of(colorizer),
            "colorspace": self.colorspace.name,
            "native_size": self.colorizer.native_size,
            "temperature": self.colorizer.temperature,
            **settings,
        }

    def _init_rebalancing(self) -> None:
        # uniform until `on_train_start` computes the training set's prior; saved with the weights
        self.register_buffer("class_weights", torch.ones(self.quantizer.num_bins))

    def on_train_start(self) -> None:
        """Compute the rebalancing weights from the training set's bin prior (once; cached with the data)."""
        if not self.rebalance:
            return
        counts = self._training_bin_counts()
        prior = torch.as_tensor(counts, dtype=torch.float64)
        if prior.sum() == 0:
            raise ConfigError("the training set has no pixels to compute the ab prior from")
        smoothed = smooth_prior(prior / prior.sum(), self.quantizer.centres.double().cpu(), self.sigma)
        weights = rebalancing_weights(smoothed, self.rebalance_mix)
        self.class_weights.copy_(weights.to(self.class_weights))

    def _training_bin_counts(self) -> np.ndarray:
        """(Q,) pixel counts per bin over the training data."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "ab_bin_counts"):  # exact counts over full images, cached with the data
            return datamodule.ab_bin_counts(self.quantizer.centres.cpu(), self.quantizer.lookup_table())
        # data without Lab arrays: one pass over the training loader (random crops; not cached)
        log.info("computing the ab prior from one pass over the training loader")
        with torch.no_grad():
            return count_bins_in_batches(
                self.trainer.train_dataloader,
                lambda ab: self.quantizer.encode_hard(ab.to(self.device)),
                self.quantizer.num_bins,
            )

    def pixel_weights(self, nearest: Tensor, ab: Tensor) -> Tensor:
        """(B, h, w) loss weight per pixel: its nearest bin's class weight; 0 in unsaturated images of `ab`."""
        saturated = saturated_images(ab).to(self.class_weights.dtype)
        return self.class_weights[nearest] * saturated[:, None, None]

    def _log_losses(self, batch_size: int, **losses: Tensor) -> None:
        for name, value in losses.items():
            self.log(  # sync_dist: under DDP the epoch values average every process, not rank 0 alone
                f"train/{name}",
                value,
                on_step=True,
                on_epoch=True,
                batch_size=batch_size,
                sync_dist=True,
            )


def _downsample(ab: Tensor, size: tuple[int, int]) -> Tensor:
    """Targets at the logits' resolution: ab averaged over each cell."""
    return F.interpolate(ab, size=size, mode="area")


class ECCV16Module(ZhangModule):
    """ECCV16: per-pixel classification into ab bins, rebalanced soft-encoded cross-entropy.

    Bins: with `weights` (an official ``.pth``, a release name or a checkpoint) the file's, i.e.
    the official 313; otherwise the gamut's (`gamut_centres`). `neighbours` and `sigma` set the soft
    encoding; ``colorspace``, ``native_size`` and ``temperature`` are the colorizer's.
    """

    def __init__(self, weights: str | None = None, neighbours: int = SOFT_NEIGHBOURS, **settings: Any) -> None:
        inference = {key: settings.pop(key) for key in INFERENCE_SETTINGS if key in settings}
        super().__init__(**settings)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=True)
        if weights:
            state_dict = read_state_dict(resolve(weights, kind="weights file"), NETWORK_PREFIX)
            bins = state_dict.get("model8.6.weight")
            colorizer = ECCV16Colorizer(bins.shape[0] if bins is not None else ECCV16_BINS, **inference)
            colorizer.load_network(state_dict, weights)
        else:
            centres = gamut_centres()
            colorizer = ECCV16Colorizer(centres.shape[0], **inference)
            with torch.no_grad():
                colorizer.net.model_out.weight.copy_(centres.T[:, :, None, None] / AB_SCALE)
        self.use_colorizer(colorizer)
        # the bins are the centres the network decodes with, so both always agree
        self.quantizer = ABQuantizer(colorizer.bin_centres, self.sigma, neighbours)
        self._init_rebalancing()

    def colorizer_config(self) -> dict[str, Any]:
        return self.zhang_config(ECCV16Colorizer, num_bins=self.net.num_bins)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        l, ab = batch["l"], batch["ab"]
        logits = self.net.logits(l)
        ab_small = _downsample(ab, logits.shape[-2:])
        indices, targets = self.quantizer.encode_soft(ab_small)
        cross_entropy = -(targets * F.log_softmax(logits, dim=1).gather(1, indices)).sum(dim=1)
        loss = (cross_entropy * self.pixel_weights(indices[:, 0], ab)).mean()
        self._log_losses(l.shape[0], loss=loss)
        return loss


class SIGGRAPH17Module(ZhangModule):
    """SIGGRAPH17: hints + L in, 529-class and regression heads, trained in two `stage`s.

    `stage` ``classification`` trains the shared layers by the cross-entropy (the regression
    decoder learns on detached features), ``regression`` by the regression loss; start the second
    from the first's checkpoint with ``weights=...ckpt``. `decode` picks the head that colorizes:
    ``regression`` (the release) or ``classification`` (annealed mean with `temperature`).
    Training hints: a geometric number of patches (stop probability `hint_stop_probability`),
    sides 1..`max_hint_patch`; none at validation/test.
    """

    def __init__(
        self,
        weights: str | None = None,
        stage: str = "classification",
        decode: str = "regression",
        regression_weight: float = 10.0,
        huber_delta: float = 1.0,
        hint_stop_probability: float = STOP_PROBABILITY,
        max_hint_patch: int = MAX_PATCH,
        **settings: Any,
    ) -> None:
        inference = {key: settings.pop(key) for key in INFERENCE_SETTINGS if key in settings}
        super().__init__(**settings)
        check_choice("model.stage", stage, STAGES)
        if not 0.0 < hint_stop_probability <= 1.0:
            raise ConfigError(f"model.hint_stop_probability={hint_stop_probability!r}: expected (0, 1]")
        if not (isinstance(max_hint_patch, int) and max_hint_patch >= 1):
            raise ConfigError(f"model.max_hint_patch={max_hint_patch!r}: expected an integer >= 1")
        if not huber_delta > 0:
            raise ConfigError(f"model.huber_delta={huber_delta!r}: expected > 0 (ab units)")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=True)
        self.stage = stage
        self.regression_weight, self.huber_delta = float(regression_weight), float(huber_delta)
        self.hint_stop_probability, self.max_hint_patch = float(hint_stop_probability), max_hint_patch
        colorizer = SIGGRAPH17Colorizer(decode, **inference)
        if weights:
            colorizer.load_network(read_state_dict(resolve(weights, kind="weights file"), NETWORK_PREFIX), weights)
        self.use_colorizer(colorizer)  # its network (``net``) and class bins (``quantizer``)
        self._init_rebalancing()

    def colorizer_config(self) -> dict[str, Any]:
        return self.zhang_config(SIGGRAPH17Colorizer, decode=self.colorizer.decode)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        l, ab = batch["l"], batch["ab"]
        hint_ab, mask = sample_hints(ab, self.hint_stop_probability, self.max_hint_patch)
        logits, prediction = self.net(l, hint_ab, mask, train_trunk_with=self.stage)
        ab_small = _downsample(ab, logits.shape[-2:])
        classes = self.quantizer.encode_hard(ab_small)
        cross_entropy = F.cross_entropy(logits, classes, reduction="none")
        classification = (cross_entropy * self.pixel_weights(classes, ab)).mean()
        # smooth L1 on ab / 110 with its quadratic zone set in ab units
        regression = F.smooth_l1_loss(prediction / AB_SCALE, ab / AB_SCALE, beta=self.huber_delta / AB_SCALE)
        loss = classification + self.regression_weight * regression
        self._log_losses(l.shape[0], loss=loss, classification=classification, regression=regression)
        return loss
