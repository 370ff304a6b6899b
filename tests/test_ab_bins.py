"""Zhang et al.'s quantized ab colours (color/ab_bins.py): the bins, soft encoding, rebalancing, the
annealed mean; and the training set's distribution over them (data/ab_prior.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorization.color.ab_bins import (
    ABQuantizer,
    annealed_mean,
    gamut_centres,
    grid_centres,
    rebalancing_weights,
    smooth_prior,
)
from colorization.color.spaces import rgb_to_lab
from colorization.data import LabArrays
from colorization.data.ab_prior import cached_bin_counts
from colorization.data.batches import AB_CV_OFFSET


def srgb_colours(count: int = 4000) -> torch.Tensor:
    """(1, 2, count, 1) ab of random sRGB colours, which all lie in the gamut's bins."""
    rgb = torch.rand(1, 3, count, 1, generator=torch.Generator().manual_seed(0))
    return rgb_to_lab(rgb)[:, 1:]


def test_gamut_bins_cover_the_srgb_gamut_within_half_a_bin():
    quantizer = ABQuantizer(gamut_centres())
    assert 200 < quantizer.num_bins < 313
    ab = srgb_colours()
    decoded = quantizer.centres[quantizer.encode_hard(ab)].permute(0, 3, 1, 2)
    assert (decoded - ab).abs().amax() <= 5.0 + 1e-4


def test_the_529_grid_encodes_within_half_a_bin_in_the_reference_order():
    quantizer = ABQuantizer(grid_centres())
    assert quantizer.num_bins == 529
    ab = (torch.rand(1, 2, 500, 1) - 0.5) * 219
    index = quantizer.encode_hard(ab)
    assert ((quantizer.centres[index].permute(0, 3, 1, 2) - ab).abs().amax()) <= 5.0 + 1e-4
    expected = torch.round((ab[:, 0] + 110) / 10) * 23 + torch.round((ab[:, 1] + 110) / 10)
    assert torch.equal(index, expected.long())


def test_soft_encoding_spreads_over_the_nearest_bins_and_sums_to_one():
    quantizer = ABQuantizer(gamut_centres())
    ab = srgb_colours(500)
    indices, weights = quantizer.encode_soft(ab)
    assert indices.shape == weights.shape == (1, 5, 500, 1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(1, 500, 1))
    assert torch.equal(indices[:, 0], quantizer.encode_hard(ab)), "the nearest bin comes first"
    assert (weights[:, :-1] >= weights[:, 1:] - 1e-6).all(), "weights fall with distance"
    distance = (quantizer.centres[indices[0, :, 0, 0]] - ab[0, :, 0, 0]).norm(dim=1)
    gaussian = torch.exp(-distance.square() / 50)
    torch.testing.assert_close(weights[0, :, 0, 0], gaussian / gaussian.sum())


def test_rebalancing_weights_have_expectation_one_under_the_prior():
    centres = gamut_centres()
    raw = torch.rand(centres.shape[0], dtype=torch.float64) ** 4
    prior = smooth_prior(raw / raw.sum(), centres.double())
    assert prior.sum().item() == pytest.approx(1.0)
    weights = rebalancing_weights(prior, 0.5)
    assert (prior * weights).sum().item() == pytest.approx(1.0)
    assert weights[prior.argmin()] > weights[prior.argmax()], "rare colours weigh more"
    torch.testing.assert_close(rebalancing_weights(prior, 1.0), torch.ones_like(prior))


def test_annealed_mean_is_the_mean_at_t1_and_the_mode_as_t_goes_to_0():
    centres = gamut_centres()
    logits = torch.randn(2, centres.shape[0], 3, 4, generator=torch.Generator().manual_seed(1)) * 3
    mean = torch.einsum("bqhw,qc->bchw", logits.softmax(1), centres)
    torch.testing.assert_close(annealed_mean(logits, centres, 1.0), mean)
    mode = centres[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(annealed_mean(logits, centres, 1e-4), mode, atol=1e-3, rtol=0)
    between = annealed_mean(logits, centres, 0.38)
    assert (between - mean).abs().mean() > 0 and (between - mode).abs().mean() > 0


def test_the_prior_counts_every_training_pixel_once_and_is_reused(kaggle_root):
    arrays = LabArrays(kaggle_root)
    quantizer = ABQuantizer(grid_centres())
    train_images = np.array([0, 2, 3, 7])
    counts = cached_bin_counts(arrays, train_images, quantizer.centres, quantizer.lookup_table())
    expected = torch.zeros(quantizer.num_bins, dtype=torch.long)
    for index in train_images:
        _, ab_cv = arrays.read(int(index))
        ab = torch.from_numpy(ab_cv).permute(2, 0, 1)[None].float() - AB_CV_OFFSET
        expected += torch.bincount(quantizer.encode_hard(ab).flatten(), minlength=quantizer.num_bins)
    assert counts.sum() == 4 * 24 * 24 and np.array_equal(counts, expected.numpy())
    (cache,) = (kaggle_root / "priors").glob("ab-counts-*.npy")
    stamp = cache.stat().st_mtime_ns
    again = cached_bin_counts(arrays, train_images, quantizer.centres, quantizer.lookup_table())
    assert np.array_equal(again, counts) and cache.stat().st_mtime_ns == stamp, "read back, not recomputed"
    cached_bin_counts(arrays, train_images[:2], quantizer.centres, quantizer.lookup_table())
    assert len(list((kaggle_root / "priors").glob("ab-counts-*.npy"))) == 2, "other images, other key"
