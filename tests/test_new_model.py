"""A new model is one network file plus one config: trained, tested and evaluated with the package unchanged.

The network and its config live only in this test's temporary directory (a Python module on
``sys.path`` and a ``model/`` option in a second config directory on Hydra's search path).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from colorization.errors import ConfigError
from colorization.inference.direct import DirectColorizer
from colorization.inference.loading import load_colorizer
from colorization.jobs.evaluate import evaluate
from colorization.jobs.train import train
from tests.helpers.configs import CONF_DIR, TINY_SAMPLE, tiny_overrides

NETWORK = '''
    """A toy colorizer: `levels` average-poolings by 2, a 3x3 convolution, nearest upsampling back."""

    from torch import Tensor, nn
    from torch.nn import functional as F

    from colorization.networks import Network
    from colorization.networks.layers import RangeActivation


    class ToyNet(Network):
        size_setting = "levels"

        def __init__(self, out_channels: int, out_range: tuple[float, float], levels: int = 1, width: int = 4):
            super().__init__()
            self.levels = levels
            self.size_multiple = self.min_size = 2**levels
            self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, out_channels, 1))
            self.out = RangeActivation(*out_range)

        def forward(self, l_norm: Tensor) -> Tensor:
            self.check_input(l_norm)
            x = F.avg_pool2d(l_norm, self.size_multiple)
            return self.out(F.interpolate(self.body(x), scale_factor=self.size_multiple, mode="nearest"))
'''

CONFIG = """
    _target_: colorization.modules.RegressionColorizer
    net:
      _target_: toy_net.ToyNet
      _partial_: true
      levels: 2
    optimizer:
      _target_: torch.optim.Adam
      _partial_: true
      lr: 0.01
"""


@pytest.fixture
def toy_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`toy_net.py` importable, and a config dir holding ``model/toy.yaml`` only."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "toy_net.py").write_text(textwrap.dedent(NETWORK))
    monkeypatch.syspath_prepend(str(code))
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "toy.yaml").write_text(textwrap.dedent(CONFIG))
    return conf


def compose_with(extra_conf: Path, config_name: str, overrides: list[str]) -> DictConfig:
    """Compose a config of the real conf/ with `extra_conf` as a second place to look for options."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=[f"hydra.searchpath=[file://{extra_conf}]", *overrides])
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def test_a_new_network_and_config_train_test_and_evaluate(toy_conf, sample_root: Path, tmp_path: Path):
    run = tmp_path / "train"
    metrics = train(compose_with(toy_conf, "train", [*tiny_overrides(sample_root, run), "model=toy"]))
    assert {"train/loss_epoch", "val/cie76", "test/cie76"} <= metrics.keys()

    checkpoint = run / "checkpoints" / "last.ckpt"
    colorizer = load_colorizer(checkpoint)
    assert isinstance(colorizer, DirectColorizer) and type(colorizer.net).__name__ == "ToyNet"
    assert colorizer.net.levels == 2
    l = torch.full((1, 1, 30, 22), 50.0)  # not a multiple of 4: colorize_full resizes to the network's multiple
    assert colorizer.colorize_full(l).shape == (1, 3, 30, 22)

    data = [f"{key}={value}" for key, value in TINY_SAMPLE.items()]
    out = tmp_path / "evaluate"
    rows = evaluate(
        compose_with(
            toy_conf,
            "evaluate",
            [
                f"paths.root_dir={tmp_path}",
                f"paths.data_dir={sample_root.parent}",
                f"paths.output_dir={out}",
                *data,
                "device=cpu",
                f"checkpoints={{toy: {checkpoint}}}",
            ],
        )
    )
    (row,) = [row for row in rows if row["model"] == "toy"]
    assert row["cie76"] > 0
    assert (out / "results.md").is_file() and "toy" in (out / "results.md").read_text()


def test_the_new_networks_size_contract_is_checked_before_training(toy_conf, sample_root: Path, tmp_path: Path):
    run = tmp_path / "train"
    cfg = compose_with(toy_conf, "train", [*tiny_overrides(sample_root, run), "model=toy", "model.net.levels=3"])
    cfg.data.crop_size = 36  # a multiple of 4 but not of 2**3
    with pytest.raises(
        ConfigError, match=r"data.crop_size=36 does not fit the net: model.net.levels=3 needs a multiple of 8"
    ):
        train(cfg)
    assert not (run / "checkpoints").exists()
