"""The release table (inference/releases.py): where the official files are, and a new family is one line of it."""

from __future__ import annotations

import pytest
import torch

from colorization.errors import DataError
from colorization.files.weights import load_strict
from colorization.inference import releases
from colorization.inference.base import Colorizer
from colorization.inference.loading import load_colorizer
from colorization.inference.releases import RELEASES


def test_the_official_release_files_are_in_the_table():
    table = RELEASES
    assert table["eccv16"].url == "https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth"
    assert table["siggraph17"].url == "https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth"
    assert (table["eccv16"].sha256_prefix, table["siggraph17"].sha256_prefix) == ("9b330a0b", "df00044c")


class ToyColorizer(Colorizer):
    """Stands in for another family whose authors publish weights: one key identifies its files."""

    release_name = "toy"

    def __init__(self, bins: int = 2) -> None:
        super().__init__()
        self.net = torch.nn.Conv2d(1, bins, 1)

    @staticmethod
    def release_settings(state_dict) -> dict | None:
        return {"bins": state_dict["toy_head.weight"].shape[0]} if "toy_head.weight" in state_dict else None

    def load_network(self, state_dict, source) -> None:
        load_strict(self.net, {k.removeprefix("toy_head."): v for k, v in state_dict.items()}, source)

    def colorize(self, l: torch.Tensor) -> torch.Tensor:
        return torch.cat([l, self.net(l)], dim=1)


def test_a_new_release_family_is_one_line_in_the_release_table(tmp_path, monkeypatch):
    monkeypatch.setattr(releases, "FAMILIES", (*releases.FAMILIES, ToyColorizer))  # for this test only
    path = tmp_path / "toy-release.pth"
    state = {"toy_head.weight": torch.randn(2, 1, 1, 1), "toy_head.bias": torch.randn(2)}
    torch.save(state, path)
    model = load_colorizer(path)
    assert isinstance(model, ToyColorizer) and model.config_name == "toy" and not model.training
    assert torch.equal(model.net.weight, state["toy_head.weight"])
    assert releases.identify(state) == (ToyColorizer, {"bins": 2})
    # a file two families claim is nobody's: refused rather than guessed
    monkeypatch.setattr(releases, "FAMILIES", (*releases.FAMILIES, ToyColorizer))
    with pytest.raises(DataError, match="nor a recognised release state dict"):
        load_colorizer(path)


def test_release_names_point_at_the_authors_hub_files():
    table = RELEASES
    assert table["ddcolor"].url == "https://huggingface.co/piddnad/ddcolor_modelscope/resolve/main/pytorch_model.bin"
    assert (
        table["ddcolor_tiny"].url == "https://huggingface.co/piddnad/ddcolor_paper_tiny/resolve/main/pytorch_model.bin"
    )
    assert {"ddcolor_paper", "ddcolor_artistic", "ddcolor_modelscope", "ddcolor_paper_tiny"} <= table.keys()
