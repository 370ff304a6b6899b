"""Zhang et al.'s quantized ab space: bins, soft and hard encoding, annealed-mean decoding, rebalancing.

Colorization as classification: ab is quantized on a grid of step 10 and a network predicts a
distribution over the bins. This module holds the arithmetic; `colorization.data.ab_prior`
computes the training set's bin prior from the data.

- Bins: ECCV16's official 313 centres come with its weights (``model_out.weight * 110``); without
  them the bins are the grid cells that the sRGB gamut reaches (`gamut_centres`, 261 of them; the
  paper's 313 also counted cells its data hit outside the gamut). SIGGRAPH17's head uses the full
  23 x 23 grid (`grid_centres`, |a|, |b| <= 110, index ``23 * ia + ib``).
- Soft encoding: a target ab spreads over its `neighbours` nearest centres with Gaussian weights
  (sigma 5), summing to 1. Hard encoding: the nearest centre.
- Decoding: the annealed mean ``sum_q softmax(logits / T)_q c_q``; T = 1 is the mean, T -> 0 the
  mode, the paper's T = 0.38 lies between.
- Rebalancing: per-bin weights ``w ~ 1 / ((1 - lambda) p~ + lambda / Q)`` with p~ the empirical
  prior smoothed by a Gaussian (sigma 5) over the bin centres, normalised so ``sum_q p~_q w_q = 1``.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from colorization.color.spaces import AB_SCALE, rgb_to_lab

GRID_STEP = 10.0
"""ab quantization step (both papers)."""
SOFT_SIGMA = 5.0
"""Gaussian sigma of soft encoding and of prior smoothing, in ab units."""
SOFT_NEIGHBOURS = 5
"""Nearest bins a target spreads over (the paper's 5; the Caffe code used 10)."""
REBALANCE_LAMBDA = 0.5
"""Weight of the uniform distribution mixed into the prior."""
GRAY_AB = 5.0
"""An image whose |a| and |b| stay within this everywhere counts as unsaturated (weight 0)."""
GAMUT_LEVELS = 65
"""sRGB levels per channel sampled to find the cells the gamut reaches (every 4th 8-bit value)."""


def grid_centres(step: float = GRID_STEP, limit: float = AB_SCALE) -> Tensor:
    """(Q, 2) every grid point (a, b) with |a|, |b| <= `limit`, a-major: 23 x 23 = 529 for the defaults."""
    axis = torch.arange(-limit, limit + step / 2, step)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)


@lru_cache(maxsize=4)
def _gamut_centres(step: float, limit: float) -> Tensor:
    levels = torch.linspace(0.0, 1.0, GAMUT_LEVELS)
    rgb = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, -1, 1)
    ab = rgb_to_lab(rgb)[0, 1:, :, 0].T
    centres = grid_centres(step, limit)
    per_axis = centres.shape[0] ** 0.5
    cell = torch.round((ab.clamp(-limit, limit) + limit) / step)
    hit = torch.zeros(centres.shape[0], dtype=torch.bool)
    hit[(cell[:, 0] * per_axis + cell[:, 1]).long()] = True
    return centres[hit]


def gamut_centres(step: float = GRID_STEP, limit: float = AB_SCALE) -> Tensor:
    """(Q, 2) the grid cells (of side `step`, |a|, |b| <= `limit`) that some sRGB colour falls in."""
    return _gamut_centres(float(step), float(limit)).clone()


def annealed_mean(logits: Tensor, centres: Tensor, temperature: float) -> Tensor:
    """(B, Q, H, W) logits -> (B, 2, H, W) ab: the centres' mean under ``softmax(logits / temperature)``."""
    probabilities = F.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", probabilities, centres.to(probabilities.dtype))


class ABQuantizer(nn.Module):
    """Bins of ab space given by their centres; encodes targets and decodes predictions.

    `centres` is a (Q, 2) tensor in ab units (kept as a buffer so it follows the module's device).
    """

    def __init__(self, centres: Tensor, sigma: float = SOFT_SIGMA, neighbours: int = SOFT_NEIGHBOURS) -> None:
        super().__init__()
        if centres.ndim != 2 or centres.shape[1] != 2 or centres.shape[0] < 1:
            raise ValueError(f"bin centres must be a (Q, 2) tensor, got {tuple(centres.shape)}")
        self.register_buffer("centres", centres.float().clone(), persistent=False)
        self.sigma = float(sigma)
        self.neighbours = min(int(neighbours), centres.shape[0])

    @property
    def num_bins(self) -> int:
        """Q, the number of bins."""
        return self.centres.shape[0]

    def _distances(self, ab: Tensor) -> Tensor:
        """(B, 2, H, W) ab -> (B*H*W, Q) Euclidean distances to every centre."""
        return torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2).float(), self.centres)

    def _unflatten(self, values: Tensor, like: Tensor) -> Tensor:
        batch, _, height, width = like.shape
        return values.reshape(batch, height, width, -1).permute(0, 3, 1, 2)

    def encode_hard(self, ab: Tensor) -> Tensor:
        """(B, 2, H, W) ab -> (B, H, W) long index of the nearest centre."""
        return self._unflatten(self._distances(ab).argmin(dim=1, keepdim=True), ab)[:, 0]

    def encode_soft(self, ab: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 2, H, W) ab -> indices and weights, both (B, k, H, W), of the k nearest bins.

        Weights are ``exp(-d^2 / (2 sigma^2))`` normalised to sum to 1 over the k bins (all other
        bins weigh 0); the nearest bin comes first.
        """
        distances, indices = self._distances(ab).topk(self.neighbours, dim=1, largest=False)
        # subtracting the nearest distance keeps exp() from underflowing far outside the bins
        weights = torch.softmax(-(distances.square() - distances[:, :1].square()) / (2 * self.sigma**2), dim=1)
        return self._unflatten(indices, ab), self._unflatten(weights, ab)

    def decode(self, logits: Tensor, temperature: float) -> Tensor:
        """(B, Q, H, W) logits -> (B, 2, H, W) ab by the annealed mean (see `annealed_mean`)."""
        return annealed_mean(logits, self.centres, temperature)

    def lookup_table(self) -> Tensor:
        """(256, 256) long: the nearest bin of every integer (a + 128, b + 128), as stored in uint8 data."""
        axis = torch.arange(256, dtype=torch.float32) - 128.0
        a, b = torch.meshgrid(axis, axis, indexing="ij")
        return self.encode_hard(torch.stack([a, b])[None].to(self.centres.device))[0].cpu()


def smooth_prior(prior: Tensor, centres: Tensor, sigma: float = SOFT_SIGMA) -> Tensor:
    """(Q,) bin probabilities -> (Q,) the same blurred by a Gaussian of `sigma` over the centres, sum 1."""
    kernel = torch.exp(-torch.cdist(centres.double(), centres.double()).square() / (2 * sigma**2))
    smoothed = kernel @ prior.double()
    return (smoothed / smoothed.sum()).to(prior.dtype)


def rebalancing_weights(smoothed_prior: Tensor, mix: float = REBALANCE_LAMBDA) -> Tensor:
    """(Q,) smoothed prior p~ -> (Q,) class weights ``w ~ 1/((1 - mix) p~ + mix/Q)`` with ``sum p~ w = 1``."""
    p = smoothed_prior.double()
    weights = 1.0 / ((1.0 - mix) * p + mix / p.numel())
    return (weights / (p * weights).sum()).to(smoothed_prior.dtype)


def saturated_images(ab: Tensor, threshold: float = GRAY_AB) -> Tensor:
    """(B, 2, H, W) ab -> (B,) bool, False for images whose |a|, |b| <= `threshold` everywhere."""
    return ab.abs().flatten(1).amax(dim=1) > threshold
