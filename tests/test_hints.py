"""Colour hints (color/hints.py): SIGGRAPH17's training samples (patches and their mean colours), a user's
points scaled to the working size, bad points refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorization.color.hints import Hints, hint_points, parse_hints, sample_hints, sample_patches
from colorization.errors import DataError
from colorization.modules import SIGGRAPH17Module


def test_hint_patches_follow_the_geometric_size_and_position_laws():
    generator = torch.Generator().manual_seed(0)
    patches = sample_patches(6000, 64, 48, generator=generator)
    counts = np.array([len(p) for p in patches])
    assert counts.mean() == pytest.approx(7.0, abs=0.35)  # (1 - 1/8) / (1/8)
    assert (counts == 0).mean() == pytest.approx(1 / 8, abs=0.015)
    flat = np.array([patch for image in patches for patch in image])
    tops, lefts, sides = flat.T
    assert set(sides) == set(range(1, 10))
    assert np.bincount(sides)[1:] / len(sides) == pytest.approx(np.full(9, 1 / 9), abs=0.01)
    assert (tops + sides <= 64).all() and (lefts + sides <= 48).all() and (tops >= 0).all() and (lefts >= 0).all()
    free = 64 - sides
    # corners are truncated to integers (as in the reference), which lowers their mean by 1/2
    assert np.mean(tops + 0.5 - (free + 1) / 2) == pytest.approx(0.0, abs=0.25)
    assert np.std(tops / (free + 1)) == pytest.approx(0.25, abs=0.02)


def test_sampled_hints_reveal_each_patchs_mean_colour():
    ab = (torch.rand(200, 2, 24, 24, generator=torch.Generator().manual_seed(0)) - 0.5) * 100
    hint_ab, mask = sample_hints(ab, stop_probability=0.5, generator=torch.Generator().manual_seed(3))
    replay = sample_patches(200, 24, 24, stop_probability=0.5, generator=torch.Generator().manual_seed(3))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hint_ab * mask, hint_ab), "no hint outside the mask"
    checked = 0
    for image, patches in enumerate(replay):
        if len(patches) == 1:
            top, left, side = patches[0]
            patch = ab[image, :, top : top + side, left : left + side]
            torch.testing.assert_close(hint_ab[image, :, top, left], patch.mean(dim=(1, 2)))
            assert mask[image].sum() == side * side
            checked += 1
        elif not patches:
            assert mask[image].sum() == 0
    assert checked > 20


def test_overlapping_hint_patches_are_painted_in_order_as_one_patch_at_a_time_would():
    ab = (torch.rand(16, 2, 20, 20, generator=torch.Generator().manual_seed(1)) - 0.5) * 100
    hint_ab, mask = sample_hints(ab, stop_probability=0.05, generator=torch.Generator().manual_seed(2))
    replay = sample_patches(16, 20, 20, stop_probability=0.05, generator=torch.Generator().manual_seed(2))
    expected_ab, expected_mask, cover = torch.zeros_like(ab), torch.zeros(16, 1, 20, 20), torch.zeros(16, 20, 20)
    for image, patches in enumerate(replay):
        for top, left, side in patches:
            rows, cols = slice(top, top + side), slice(left, left + side)
            expected_ab[image, :, rows, cols] = ab[image, :, rows, cols].mean(dim=(1, 2), keepdim=True)
            expected_mask[image, :, rows, cols] = 1.0
            cover[image, rows, cols] += 1
    assert (cover >= 2).sum() > 100, "the draw must overlap patches to test their order"
    torch.testing.assert_close(hint_ab, expected_ab)
    assert torch.equal(mask, expected_mask)


def test_user_hints_scale_to_the_working_size_and_change_the_colours():
    hints = Hints.from_points([[(10, 20, 60.0, -30.0)]], size=(40, 80), patch=1)
    hint_ab, mask = hints.rasterize(80, 160)
    assert mask.sum() == 1 and mask[0, 0, 40, 20] == 1
    assert hint_ab[0, :, 40, 20].tolist() == [60.0, -30.0]
    model = SIGGRAPH17Module(native_size=32).eval()
    l = torch.rand(1, 1, 40, 80) * 100
    guided, plain = model.colorize_full(l, hints=hints), model.colorize_full(l)
    assert guided.shape == plain.shape == (1, 3, 40, 80)
    assert (guided - plain).abs().amax() > 1e-3
    with pytest.raises(DataError, match="hints for 1 images given with a batch of 2"):
        model.colorize(torch.rand(2, 1, 16, 16) * 100, hints=hints)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[(80, 0, 0, 0)]], r"outside the 80x40 image"),
        ([[(0, 0, 0, 120)]], r"a, b must lie in \[-110, 110\]"),
        ([[(1, 2, 3)]], r"expected \(x, y, a, b\)"),
        ([[(1, 2, float("nan"), 0)]], r"^hints: hint 1 .*: x, y, a and b must be finite numbers, not nan"),
        ([[(1, 2, 0, 0), (1, float("inf"), 0, 0)]], r"^hints: hint 2 .*: x, y, a and b must be finite.*, not inf"),
        ([[], [(1, 2, 0, -float("inf"))]], r"^hints: hint 1 .* of image 1: x, y, a and b must be finite"),
    ],
)
def test_bad_hint_points_are_refused(points, message):
    with pytest.raises(DataError, match=message):
        Hints.from_points(points, size=(40, 80))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"x": 10, "y": 10, "ab": [NaN, 0]}]', r"a and b must be finite numbers, not nan"),
        ('[{"x": 10, "y": 10, "ab": ["NaN", 0]}]', r"a and b must be finite numbers, not 'NaN'"),
        ('[{"x": 10, "y": 10, "ab": [0, Infinity]}]', r"a and b must be finite numbers, not inf"),
        ('[{"x": 10, "y": 10, "ab": [0, "-inf"]}]', r"a and b must be finite numbers, not '-inf'"),
        ('[{"x": 1, "y": 1, "ab": [0, 0]}, {"x": NaN, "y": 10, "ab": [0, 0]}]', r"x and y \(pixels\) .*, not nan"),
        ('[{"x": 10, "y": "Infinity", "color": "#ff0000"}]', r"x and y \(pixels\) must be finite numbers"),
    ],
)
def test_non_finite_hints_are_refused_naming_the_file_and_the_hint(text, message):
    # Python's JSON reader takes NaN and Infinity, and float() takes "nan": both passed the range check
    with pytest.raises(DataError, match=rf"^h\.json: hint \d .*{message}"):
        parse_hints(text, "h.json")


def test_a_hint_outside_the_photo_names_the_hints_file_and_the_hint():
    points = parse_hints("x,y,color\n5,5,#ff0000\n50,5,#00ff00\n", "h.csv")
    with pytest.raises(DataError, match=r"^h\.csv: hint 2 \(50\.0, 5\.0, .*\): \(x, y\) outside the 20x10 image$"):
        Hints.from_points([points], size=(10, 20), source="h.csv")
    assert hint_points([{"x": 1, "y": 2, "ab": ["3", 4]}]) == [(1.0, 2.0, 3.0, 4.0)], "numbers as text still read"
