"""Colour spaces: agreement with scikit-image, round trips, target ranges."""

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from colorization.color.spaces import COLORSPACES, get_colorspace, lab_to_rgb, rgb_to_lab
from colorization.errors import ConfigError


def random_rgb(seed: int = 0, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).random((2, size, size, 3))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float()


def test_rgb_to_lab_matches_skimage_within_1e3():
    rgb = random_rgb()
    ours = rgb_to_lab(to_tensor(rgb).double()).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, rgb2lab(rgb), atol=1e-3)


def test_lab_to_rgb_matches_skimage_within_1e3():
    lab = rgb2lab(random_rgb(1))
    ours = lab_to_rgb(to_tensor(lab).double()).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, lab2rgb(lab), atol=1e-3)


@pytest.mark.parametrize("name", sorted(COLORSPACES))
def test_round_trip_recovers_ab(name):
    space = get_colorspace(name)
    lab = to_tensor(rgb2lab(random_rgb(2)))
    l, ab = lab[:, :1], lab[:, 1:]
    target = space.encode(l, ab)
    assert target.shape == (2, space.channels, 16, 16)
    # round trip through float32 sRGB/HLS conversions: far below a just-noticeable difference
    torch.testing.assert_close(space.decode_ab(l, target), ab, atol=0.05, rtol=0)
    decoded = space.decode_lab(l, target)
    assert torch.equal(decoded[:, :1], l), "decoding must carry the input L"
    torch.testing.assert_close(space.decode_rgb(l, target), lab_to_rgb(lab), atol=1e-3, rtol=0)


@pytest.mark.parametrize("name", sorted(COLORSPACES))
def test_targets_lie_in_the_documented_output_range(name):
    space = get_colorspace(name)
    # the sRGB cube's corners hold the most saturated colours
    corners = torch.tensor([[r, g, b] for r in (0, 1) for g in (0, 1) for b in (0, 1)], dtype=torch.float32)
    lab = rgb_to_lab(corners.T.reshape(1, 3, 2, 4))
    target = space.encode(lab[:, :1], lab[:, 1:])
    low, high = space.output_range
    assert target.min() >= low - 1e-4 and target.max() <= high + 1e-4


def test_hls_hue_spans_its_full_range():
    # the study's H/255 on OpenCV's 0..180 hue only reached 0.706; ours must reach ~1
    space = get_colorspace("hls")
    hue = torch.linspace(0, 0.99, 100)
    hls = torch.stack([hue * 2 * np.pi, torch.full_like(hue, 0.5), torch.ones_like(hue)]).reshape(1, 3, 10, 10)
    import kornia.color

    lab = rgb_to_lab(kornia.color.hls_to_rgb(hls))
    encoded_hue = space.encode(lab[:, :1], lab[:, 1:])[:, 0]
    assert encoded_hue.max() > 0.98 and encoded_hue.min() < 0.01


def test_unknown_colorspace_is_a_config_error():
    with pytest.raises(ConfigError, match=r"colorspace.name='xyz' is unknown; expected one of \['hls', 'lab', 'rgb'\]"):
        get_colorspace("xyz")
