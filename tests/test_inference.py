"""What every colorizer does at inference (inference/base.py), as the docs promise it: colorize_full takes
L of any size in [0, 100] and refuses anything else in one line, hints only where a model reads them,
rows named after the model config and colour space."""

from __future__ import annotations

import pytest
import torch

from colorization.errors import ConfigError, DataError
from colorization.modules.build import build_module
from tests.helpers.configs import compose_config


@pytest.fixture(scope="module")
def cnn():
    return build_module(compose_config("train", ["model=cnn"]).model, "lab", "cnn").eval()


@pytest.mark.parametrize(
    ("l", "message"),
    [
        (torch.rand(1, 16, 16) * 100, r"expected L of shape \(B, 1, H, W\); got \(1, 16, 16\); add the batch"),
        (torch.rand(2, 3, 16, 16) * 100, r"got \(2, 3, 16, 16\)"),
        (
            (torch.rand(1, 1, 16, 16) * 255).to(torch.uint8),
            r"got torch.uint8 \(uint8 0..255: use l.float\(\) \* 100 / 255\)",
        ),
        (torch.rand(1, 1, 16, 16) * 255, r"expected L in \[0, 100\]; got values in \[.*, 2\d\d.*\]"),
        (torch.full((1, 1, 16, 16), float("nan")), "NaN"),
        ([[0.0]], "expected L as a torch.Tensor"),
    ],
)
def test_colorize_full_refuses_bad_input_in_one_line(cnn, l, message):
    with pytest.raises(DataError, match=message) as error:
        cnn.colorize_full(l)
    assert "\n" not in str(error.value)


def test_colorize_full_takes_good_input_black_photos_and_warns_about_l_in_0_to_1(cnn):
    assert cnn.colorize_full(torch.rand(2, 1, 16, 16) * 100).shape == (2, 3, 16, 16)
    assert cnn.colorize_full(torch.zeros(1, 1, 16, 16)).shape == (1, 3, 16, 16)  # an all-black photo
    with pytest.warns(UserWarning, match=r"L in \[0, 1\] given for \[0, 100\] \(then use l \* 100\)"):
        cnn.colorize_full(torch.rand(1, 1, 16, 16))


def test_hints_for_a_model_that_reads_none_are_a_config_error(cnn):
    with pytest.raises(ConfigError, match=r"cnn takes no hints= keyword \(only SIGGRAPH17 reads hints\)"):
        cnn.colorize_full(torch.rand(1, 1, 16, 16) * 100, hints=object())


def test_a_row_is_named_after_its_model_config_and_colour_space():
    model = build_module(compose_config("train", ["model=model2"]).model, "hls", "model2")
    assert model.display_name == "model2 (hls)"
