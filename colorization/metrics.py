"""Colorization metrics: one definition each, in standard units.

Every metric takes Lab images, ``(B, 3, H, W)`` with L in [0, 100] and a*, b* in standard CIE
units, as (prediction, target), so that all model families are scored by the same code. The
`functional` forms give per-image or per-pixel values; the `torchmetrics.Metric` classes
accumulate over batches and synchronise across devices.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from colorization.colorspaces import lab_to_rgb


def mse_rgb(pred_lab: Tensor, target_lab: Tensor) -> Tensor:
    """Per-image mean squared error of sRGB in [0, 1] (the study's MSE).

    ``mean_{c,h,w} (rgb_pred - rgb_target)^2`` over the three sRGB channels, range [0, 1].
    Returns a (B,) tensor.
    """
    diff = lab_to_rgb(pred_lab.float()) - lab_to_rgb(target_lab.float())
    return diff.square().flatten(1).mean(1)


def delta_e_cie76(pred_lab: Tensor, target_lab: Tensor) -> Tensor:
    """Per-pixel CIE76 colour difference Delta E*ab in standard Lab units, shape (B, H, W).

    ``sqrt(dL^2 + da^2 + db^2)``; 0 for identical colours, about 2.3 is a just-noticeable
    difference, and the sRGB gamut spans up to about 260. With the input L re-attached it is the
    ab distance.
    """
    return (pred_lab.float() - target_lab.float()).square().sum(1).sqrt()


class _MeanOverPixels(Metric):
    """Mean of a per-element quantity over every element seen, summed in float64."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def _accumulate(self, values: Tensor, count: int) -> None:
        self.total += values.double().sum()
        self.count += count

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


class MSE(_MeanOverPixels):
    """Mean squared error of sRGB in [0, 1], averaged over all pixels and channels (see `mse_rgb`)."""

    def update(self, pred_lab: Tensor, target_lab: Tensor) -> None:
        per_image = mse_rgb(pred_lab, target_lab)
        pixels = pred_lab[0, 0].numel()
        self._accumulate(per_image * pixels, per_image.numel() * pixels)


class CIE76(_MeanOverPixels):
    """Mean per-pixel CIE76 Delta E*ab in standard Lab units (see `delta_e_cie76`)."""

    def update(self, pred_lab: Tensor, target_lab: Tensor) -> None:
        delta = delta_e_cie76(pred_lab, target_lab)
        self._accumulate(delta, delta.numel())


def colorization_metrics(prefix: str) -> MetricCollection:
    """The metrics every module logs during validation and test, keys like ``val/cie76``."""
    return MetricCollection({"mse": MSE(), "cie76": CIE76()}, prefix=prefix)
