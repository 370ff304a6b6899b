"""Zhang et al.'s colorizers as LightningModules: ECCV16 (classification) and SIGGRAPH17 (user-guided).

Both run photos the way the official release does (`colorize_full`: L resized to `native_size`,
256 by default, ab predicted there, upsampled bilinearly and re-attached to the full-resolution L),
load the official weights strictly with ``weights=PATH``, and train from scratch:

- ECCV16: cross-entropy against soft-encoded targets over the ab bins, each pixel weighted by the
  rebalancing weight of its nearest bin; decoding by the annealed mean with `temperature`.
- SIGGRAPH17: random user hints (`colorization.color.hints.sample_hints`); cross-entropy on the 529-class
  grid at 1/4 resolution plus `regression_weight` x smooth-L1 on the regressed ab; `stage` picks
  which of the two losses trains the shared layers (classification first, then regression).

Validation and test are `ColorizerModule`'s, so the metrics are those of every other family.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from pathlib import Path
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
    grid_centres,
    rebalancing_weights,
    saturated_images,
    smooth_prior,
)
from colorization.color.hints import MAX_PATCH, STOP_PROBABILITY, Hints, sample_hints
from colorization.color.spaces import AB_SCALE
from colorization.data.ab_prior import count_bins_in_batches
from colorization.errors import ConfigError, DataError, check_choice
from colorization.files.downloads import ReleaseFile, register_release_file
from colorization.files.weights import load_strict, read_state_dict
from colorization.inference.releases import ReleaseFormat, register_release
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule, OptimizerFactory, SchedulerFactory
from colorization.networks.zhang import ECCV16_BINS, TRUNK_STRIDE, ECCV16Colorizer, SIGGRAPH17Colorizer

log = logging.getLogger(__name__)

NATIVE_SIZE = 256
"""The release's working resolution."""
ANNEALED_T = 0.38
NETWORK_PREFIX = "net."
"""The network's entries in a checkpoint's state dict (``weights`` may name one of our checkpoints)."""
STAGES = ("classification", "regression")
DECODERS = ("regression", "classification")


class ZhangColorizer(ColorizerModule):
    """What both share: Lab only, the release's resizing, the optimizer, class rebalancing.

    Subclasses set `self.net` and `self.quantizer` (the bins their classification head predicts)
    and call `_init_rebalancing`.
    """

    resize_mode = "bicubic"  # the release resizes the photo with PIL's bicubic filter

    def __init__(
        self,
        colorspace: str = "lab",
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        native_size: int | None = NATIVE_SIZE,
        temperature: float = ANNEALED_T,
        rebalance: bool = True,
        rebalance_mix: float = REBALANCE_LAMBDA,
        sigma: float = SOFT_SIGMA,
    ) -> None:
        super().__init__(colorspace)
        if self.colorspace.name != "lab":
            raise ConfigError(f"colorspace.name={self.colorspace.name!r}: Zhang et al.'s models predict ab; use lab")
        if native_size is not None and not (isinstance(native_size, int) and native_size >= TRUNK_STRIDE):
            raise ConfigError(f"model.native_size={native_size!r}: expected an integer >= {TRUNK_STRIDE} or null")
        if not temperature > 0:
            raise ConfigError(f"model.temperature={temperature!r}: expected > 0 (1 = mean, towards 0 = mode)")
        if not 0.0 <= rebalance_mix <= 1.0:
            raise ConfigError(f"model.rebalance_mix={rebalance_mix!r}: expected a weight in [0, 1]")
        # None runs the network at the input size (rounded to its stride of 8)
        self.native_size = native_size
        self.size_multiple = TRUNK_STRIDE
        self.temperature = float(temperature)
        self.rebalance, self.rebalance_mix, self.sigma = bool(rebalance), float(rebalance_mix), float(sigma)
        self.use_optimizer(optimizer, scheduler)

    @property
    def family_name(self) -> str:
        # the family's module names the model better than its network (ECCV16Module, not ECCV16Colorizer)
        return type(self).__name__

    @classmethod
    def checkpoint_config(cls, model_config: dict[str, Any], path: Path) -> dict[str, Any]:
        """A run that started from a weight file (``weights``) is rebuilt from the checkpoint itself: that
        file need not exist any more, and the checkpoint holds the trained network in the same layout."""
        return {**model_config, "weights": str(path)} if model_config.get("weights") else model_config

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


class ECCV16Module(ZhangColorizer):
    """ECCV16: per-pixel classification into ab bins, rebalanced soft-encoded cross-entropy.

    Bins: with `weights` (an official ``.pth`` or a checkpoint) the file's, i.e. the official 313;
    otherwise the gamut's (`gamut_centres`). `neighbours` and `sigma` set the soft encoding.
    """

    def __init__(
        self,
        colorspace: str = "lab",
        weights: str | None = None,
        neighbours: int = SOFT_NEIGHBOURS,
        **kwargs: Any,
    ) -> None:
        super().__init__(colorspace, **kwargs)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=True)
        if weights:
            state_dict = read_state_dict(weights, NETWORK_PREFIX)
            bins = state_dict.get("model8.6.weight")
            self.net = ECCV16Colorizer(bins.shape[0] if bins is not None else ECCV16_BINS)
            load_strict(self.net, state_dict, weights)
        else:
            centres = gamut_centres()
            self.net = ECCV16Colorizer(centres.shape[0])
            with torch.no_grad():
                self.net.model_out.weight.copy_(centres.T[:, :, None, None] / AB_SCALE)
        # the bins are the centres the network decodes with, so both always agree
        centres = self.net.model_out.weight.detach()[:, :, 0, 0].T * AB_SCALE
        self.quantizer = ABQuantizer(centres, self.sigma, neighbours)
        self._init_rebalancing()

    def colorize(self, l: Tensor) -> Tensor:
        return torch.cat([l, self.net(l, self.temperature)], dim=1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        l, ab = batch["l"], batch["ab"]
        logits = self.net.logits(l)
        ab_small = _downsample(ab, logits.shape[-2:])
        indices, targets = self.quantizer.encode_soft(ab_small)
        cross_entropy = -(targets * F.log_softmax(logits, dim=1).gather(1, indices)).sum(dim=1)
        loss = (cross_entropy * self.pixel_weights(indices[:, 0], ab)).mean()
        self._log_losses(l.shape[0], loss=loss)
        return loss


class SIGGRAPH17Module(ZhangColorizer):
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
        colorspace: str = "lab",
        weights: str | None = None,
        stage: str = "classification",
        decode: str = "regression",
        regression_weight: float = 10.0,
        huber_delta: float = 1.0,
        hint_stop_probability: float = STOP_PROBABILITY,
        max_hint_patch: int = MAX_PATCH,
        **kwargs: Any,
    ) -> None:
        super().__init__(colorspace, **kwargs)
        check_choice("model.stage", stage, STAGES)
        check_choice("model.decode", decode, DECODERS)
        if not 0.0 < hint_stop_probability <= 1.0:
            raise ConfigError(f"model.hint_stop_probability={hint_stop_probability!r}: expected (0, 1]")
        if not (isinstance(max_hint_patch, int) and max_hint_patch >= 1):
            raise ConfigError(f"model.max_hint_patch={max_hint_patch!r}: expected an integer >= 1")
        if not huber_delta > 0:
            raise ConfigError(f"model.huber_delta={huber_delta!r}: expected > 0 (ab units)")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=True)
        self.stage, self.decode = stage, decode
        self.regression_weight, self.huber_delta = float(regression_weight), float(huber_delta)
        self.hint_stop_probability, self.max_hint_patch = float(hint_stop_probability), max_hint_patch
        self.net = SIGGRAPH17Colorizer()
        if weights:
            load_strict(self.net, read_state_dict(weights, NETWORK_PREFIX), weights)
        self.quantizer = ABQuantizer(grid_centres())
        self._init_rebalancing()

    def colorize(self, l: Tensor, hints: Hints | None = None) -> Tensor:
        """(B, 1, H, W) L -> (B, 3, H, W) Lab; `hints` (points in any image size) guide the colours."""
        logits, ab = self._run(l, hints)
        if self.decode == "classification":
            ab = F.interpolate(self.quantizer.decode(logits, self.temperature), size=l.shape[-2:], mode="bilinear")
        return torch.cat([l, ab], dim=1)

    def colour_probabilities(self, l: Tensor, hints: Hints | None = None) -> Tensor:
        """(B, 1, H, W) L (+ hints) -> (B, Q, ceil(H/4), ceil(W/4)) the class head's probability of each ab bin.

        The bins' centres are ``self.quantizer.centres`` (Q, 2): the colours the model finds
        likely at a point, which an interactive tool offers as a palette.
        """
        return F.softmax(self._run(l, hints)[0], dim=1)

    def _run(self, l: Tensor, hints: Hints | None) -> tuple[Tensor, Tensor]:
        """The network on L and the rasterized hints: class logits (1/4 resolution) and regressed ab."""
        hint_ab = mask = None
        if hints is not None:
            if len(hints.points) != l.shape[0]:
                raise DataError(f"hints for {len(hints.points)} images given with a batch of {l.shape[0]}")
            hint_ab, mask = hints.rasterize(*l.shape[-2:], device=l.device)
        return self.net(l, hint_ab, mask)

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


OFFICIAL_RELEASES: dict[str, dict[str, Any]] = {
    "eccv16": {"_target_": f"{__name__}.ECCV16Module", "temperature": 1.0},
    "siggraph17": {"_target_": f"{__name__}.SIGGRAPH17Module"},
}
"""Model configs that reproduce the release's inference (ECCV16's release decodes the plain mean, T = 1)."""


def release_config(kind: str, weights: str | Path) -> dict[str, Any]:
    """The model config of an official release file `weights` of `kind` ('eccv16' or 'siggraph17')."""
    return {**OFFICIAL_RELEASES[kind], "weights": str(weights)}


def build_release(kind: str, path: Path) -> ZhangColorizer:
    """The official release file at `path` of `kind`, run as the release runs it (eval mode)."""
    config = release_config(kind, path)
    model = instantiate(config)
    model.model_config = config  # what a checkpoint of it stores to rebuild it
    return model.eval()


RELEASE_SIGNATURES: dict[str, str] = {"eccv16": "model8.6.weight", "siggraph17": "model_class.0.weight"}
"""Each official network -> a key only its release file has."""


def release_format(kind: str) -> ReleaseFormat:
    """The official `kind` release: a file with its signature key and no other release's."""
    others = [key for other, key in RELEASE_SIGNATURES.items() if other != kind]

    def identify(state_dict: Mapping[str, Tensor]) -> bool:
        return RELEASE_SIGNATURES[kind] in state_dict and not any(key in state_dict for key in others)

    return ReleaseFormat(name=kind, identify=identify, build=partial(build_release, kind))


for _kind in RELEASE_SIGNATURES:
    register_release(release_format(_kind))


RELEASE_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"
"""Where the official `colorizers` package fetches the weights from."""
OFFICIAL_FILES = {
    "eccv16": ("colorization_release_v2-9b330a0b.pth", 128_976_165),
    "siggraph17": ("siggraph17-df00044c.pth", 136_787_426),
}
"""Release name -> (file name, bytes); the 8 hex digits in the name start the file's sha256."""

# `--model eccv16` / `model.weights=eccv16` name them (colorization.files.downloads)
for _name, (_filename, _size) in OFFICIAL_FILES.items():
    _digest = _filename.rsplit("-", 1)[1].removesuffix(".pth")
    register_release_file(
        ReleaseFile(_name, RELEASE_URL + _filename, _filename, _digest, _size, f"Zhang et al. {_name}")
    )
