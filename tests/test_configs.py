"""Every option of every config group composes (Hydra compose API) and builds what it names."""

from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import Logger

from colorization.color.spaces import get_colorspace
from colorization.errors import ConfigError
from colorization.instantiate import instantiate_all
from colorization.jobs.devices import check_hardware
from colorization.jobs.train import build_trainer
from colorization.modules.build import build_module
from tests.helpers.configs import CONF_DIR, compose_config
from tests.helpers.marks import with_slow

GROUPS = ["data", "model", "colorspace", "trainer", "logger", "callbacks", "paths", "experiment"]
OPTIONS = [(group, path.stem) for group in GROUPS for path in sorted((CONF_DIR / group).glob("*.yaml"))]


def test_every_group_has_options():
    assert {group for group, _ in OPTIONS} == set(GROUPS)


@pytest.mark.parametrize(
    ("group", "option"), with_slow(OPTIONS, [("model", "ddcolor")]), ids=[f"{g}={o}" for g, o in OPTIONS]
)
def test_every_option_composes_and_builds(group, option, tmp_path: Path):
    overrides = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}", "data.root=" + str(tmp_path)]
    cfg = compose_config("train", [f"{group}={option}", *overrides])
    assert cfg.model._target_ and cfg.data._target_ and cfg.trainer._target_
    space = get_colorspace(cfg.colorspace.name)
    if group in ("model", "experiment", "colorspace"):
        model = build_module(cfg.model, cfg.colorspace.name)
        assert model.colorspace.name == space.name
    if group in ("logger", "callbacks"):  # a Lightning Logger or Callback for every entry the option sets
        kind = Logger if group == "logger" else Callback
        entries = [entry for entry in (cfg[group] or {}).values() if entry is not None]
        built = instantiate_all(cfg[group])
        assert len(built) == len(entries) and all(isinstance(obj, kind) for obj in built), [type(o) for o in built]
    if group == "trainer":
        try:
            check_hardware(cfg.trainer)
        except ConfigError as error:  # a GPU config on a machine without one: must say so
            assert "GPU" in str(error)
        else:
            build_trainer(cfg.trainer, logger=False)


def test_default_config_is_the_studys_cnn_on_the_built_in_photos(tmp_path: Path):
    cfg = compose_config("train", [f"paths.root_dir={tmp_path}"])
    assert cfg.model.net._target_ == "colorization.networks.StudyCNN"
    model = build_module(cfg.model, cfg.colorspace.name)  # the network's and the module's own defaults
    net = model.net
    assert (net.down1.out_channels, net.down1.stride, net.down1.padding) == (12, (1, 1), (0, 0))  # valid
    assert cfg.model.optimizer.lr == 1e-3 and isinstance(model.loss_fn, torch.nn.MSELoss)
    assert cfg.trainer.max_epochs == 5 and cfg.colorspace.name == "lab"
    assert cfg.data._target_ == "colorization.data.SamplePhotosDataModule"
    assert cfg.optimized_metric == "val/cie76"


@pytest.mark.parametrize(("option", "stride", "filters"), [("model1", 1, 12), ("model2", 2, 12), ("model3", 1, 32)])
def test_report_variants(option, stride, filters, tmp_path: Path):
    cfg = compose_config("train", [f"model={option}", f"paths.root_dir={tmp_path}"])
    model = build_module(cfg.model, "lab")
    assert model.net.down1.stride == (stride, stride) and model.net.down1.out_channels == filters


def test_kaggle_data_defaults_follow_the_study(tmp_path: Path):
    cfg = compose_config("train", ["data=kaggle", f"paths.root_dir={tmp_path}"])
    assert cfg.data.batch_size == 64 and cfg.data.crop_size == 224 and cfg.data.test_start is None


def test_model_settings_reach_the_network(tmp_path: Path):
    cfg = compose_config(
        "train", ["++model.net.filters=7", "++model.net.stride=3", "colorspace=hls", f"paths.root_dir={tmp_path}"]
    )
    model = build_module(cfg.model, cfg.colorspace.name)
    assert model.net.down1.out_channels == 7 and model.net.down1.stride == (3, 3)
    assert model.net.up2.out_channels == 3, "HLS has three target channels"


def test_hardware_configs(monkeypatch: pytest.MonkeyPatch):
    ddp = compose_config("train", ["trainer=ddp"]).trainer
    assert (ddp.accelerator, ddp.devices, ddp.strategy, ddp.sync_batchnorm) == ("gpu", -1, "ddp", True)
    ddp_cpu = compose_config("train", ["trainer=ddp_cpu"]).trainer
    assert (ddp_cpu.accelerator, ddp_cpu.devices, ddp_cpu.strategy.process_group_backend) == ("cpu", 2, "gloo")

    for name in ("SLURM_NNODES", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(name, raising=False)
    slurm = compose_config("train", ["trainer=slurm"]).trainer
    assert (slurm.num_nodes, slurm.devices) == (1, 1)
    monkeypatch.setenv("SLURM_NNODES", "3")
    monkeypatch.setenv("SLURM_NTASKS_PER_NODE", "4")
    slurm = compose_config("train", ["trainer=slurm"]).trainer
    assert (slurm.num_nodes, slurm.devices, slurm.strategy, slurm.sync_batchnorm) == (3, 4, "ddp", True)
    from hydra.utils import instantiate
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    assert isinstance(instantiate(slurm.plugins[0]), SLURMEnvironment)
