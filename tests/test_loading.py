"""inference/loading.py: a checkpoint, release file or release name -> a ready colorizer, and what it refuses.

A family's own files are loaded in its test file (test_zhang.py, test_ddcolor.py), old checkpoints in
test_legacy_checkpoints.py, untrusted ones in test_failure_matrix.py, release names fetched in test_downloads.py."""

from __future__ import annotations

import pytest
import torch

from colorization.errors import ConfigError, DataError
from colorization.inference.loading import load_colorizer, random_init_skipped, resolve


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"conv.weight": torch.zeros(1)}, "neither a colorization checkpoint"),
        ([1, 2, 3], "neither a colorization checkpoint"),
    ],
)
def test_load_colorizer_refuses_files_it_cannot_identify(content, message, tmp_path):
    path = tmp_path / "other.pth"
    torch.save(content, path)
    with pytest.raises(DataError, match=message):
        load_colorizer(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="not a readable PyTorch file"):
        load_colorizer(garbage)


def test_loading_skips_random_init_only_while_building_and_restores_it_after_an_error():
    normal = torch.nn.init.normal_
    weights = torch.zeros(4)
    with pytest.raises(RuntimeError, match="inside"), random_init_skipped():
        torch.nn.init.normal_(weights)
        assert torch.equal(weights, torch.zeros(4)), "nothing is drawn while a strict load follows"
        raise RuntimeError("inside")
    assert torch.nn.init.normal_ is normal
    torch.nn.init.normal_(weights)
    assert not torch.equal(weights, torch.zeros(4))


def test_unknown_names_and_missing_files():
    with pytest.raises(ConfigError, match=r"neither a file nor a known release name; expected .*'eccv16'"):
        resolve("eccv61")
    with pytest.raises(DataError, match="nowhere/model.ckpt: file not found"):
        resolve("nowhere/model.ckpt")
