"""Weight files (files/weights.py): the sha256 prefix in a release name is checked, strict loading names misfits."""

from __future__ import annotations

import os
import pickle
import warnings

import pytest
import torch

from colorization.errors import DataError
from colorization.files.weights import load_strict, read_state_dict, safe_load
from colorization.networks import ECCV16Net


def test_a_wrong_sha256_prefix_in_the_name_is_refused(tmp_path):
    path = tmp_path / "siggraph17-00000000.pth"
    torch.save({"model_out.0.bias": torch.zeros(2)}, path)
    with pytest.raises(DataError, match=r"siggraph17-00000000.pth: sha256 does not start with 00000000"):
        read_state_dict(path)


def test_strict_loading_names_the_first_wrong_missing_and_unexpected_keys():
    net = ECCV16Net()
    state = net.state_dict()
    wrong = dict(state, **{"model1.0.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(DataError, match=r"wrong shapes: model1.0.weight \(64, 3, 3, 3\) \(expected \(64, 1, 3, 3\)\)"):
        load_strict(net, wrong, "f.pth")
    missing = {k: v for k, v in state.items() if k != "model2.0.bias"}
    with pytest.raises(DataError, match=r"^f.pth: does not fit ECCV16Net; missing keys: model2.0.bias \(1 in all\)$"):
        load_strict(net, missing, "f.pth")
    with pytest.raises(DataError, match=r"unexpected keys: extra.weight"):
        load_strict(net, dict(state, **{"extra.weight": torch.zeros(1)}), "f.pth")


class RunsACommand:
    """A pickle payload: unpickling it would run ``echo``."""

    def __reduce__(self):
        return os.system, ("echo unpickled",)


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("payload", [RunsACommand(), {"weight": [1.0, 2.0]}], ids=["command", "plain dict"])
def test_a_raw_pickle_is_refused_with_no_warning_before(payload, protocol, tmp_path):
    path = tmp_path / "release.pth"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match=rf"^{path}: (refused to load|not a readable PyTorch file)"):
            safe_load(path)
    assert [str(w.message) for w in caught] == [], "the refusal is the only thing the user sees"


def test_a_folder_given_as_a_weight_file_is_named_a_folder(tmp_path):
    with pytest.raises(DataError, match=rf"^{tmp_path}: a folder; expected a checkpoint or weight file$"):
        safe_load(tmp_path)
    with pytest.raises(DataError, match=rf"^{tmp_path}: a folder; expected a weight file \(\.pth\) or checkpoint$"):
        read_state_dict(tmp_path)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'missing.pth'}: weights file not found$"):
        read_state_dict(tmp_path / "missing.pth")
