"""Inference settings (precision, channels-last, compile) and the per-process thread policy."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from colorization.errors import ConfigError
from colorization.inference.runtime import prepare_for_inference, resolve_precision
from colorization.jobs.threads import default_num_threads, physical_cores, set_num_threads
from colorization.jobs.train import build_trainer, use_threads
from colorization.metrics.image import delta_e_cie76
from colorization.modules.build import build_module
from tests.helpers.configs import compose_config

CPU = torch.device("cpu")


def colorizer(model: str = "cnn", *overrides: str):
    cfg = compose_config("train", [f"model={model}", *overrides])
    return build_module(cfg.model, cfg.colorspace.name)


@pytest.fixture
def photo_l() -> torch.Tensor:
    """A smooth L ramp with a bright disc, (2, 1, 40, 36): something with structure to colorize."""
    y, x = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 36), indexing="ij")
    l = 20 + 60 * x + 20 * ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.05).float()
    return torch.stack([l, l.flip(-1)])[:, None]


def test_precision_auto_is_fp32_on_the_cpu_and_bad_values_name_the_key():
    assert resolve_precision("auto", CPU) == "fp32" and resolve_precision(None, CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ConfigError, match=r"^precision='fp16' is unknown; expected one of \['auto', 'bf16', 'fp32'\]"):
        resolve_precision("fp16", CPU)


@pytest.mark.parametrize("model", ["cnn", "eccv16"])
def test_bf16_output_is_float32_and_close_to_fp32_with_the_input_l_kept(model, photo_l):
    net = prepare_for_inference(colorizer(model))
    fp32, bf16 = net.colorize_full(photo_l), net.colorize_full(photo_l, precision="bf16")
    assert fp32.dtype == bf16.dtype == torch.float32 and bf16.shape == photo_l.shape[:1] + (3, *photo_l.shape[2:])
    assert torch.equal(bf16[:, :1], photo_l)  # L is the input's, untouched by the reduced precision
    error = delta_e_cie76(bf16, fp32)
    # bf16 keeps 8 bits of mantissa: the colours move a little, never wildly
    assert 0 < error.max() < 5 and error.mean() < 1


def test_channels_last_changes_the_weights_layout_not_the_result(photo_l):
    model = colorizer("pix2pix", "model.generator.num_downs=3")
    reference = prepare_for_inference(model).colorize_full(photo_l)
    prepare_for_inference(model, channels_last=True)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    torch.testing.assert_close(model.colorize_full(photo_l), reference, atol=1e-3, rtol=1e-4)


def test_model_compile_flag_compiles_the_networks_and_keeps_checkpoint_names():
    plain, compiled = colorizer("cnn"), colorizer("cnn", "model.compile=true")
    assert compiled.net._compiled_call_impl is not None and plain.net._compiled_call_impl is None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no `_orig_mod.` prefixes
    assert "compile" not in compiled.model_config  # how it ran is not what the model is


def test_model_compile_must_be_a_boolean():
    with pytest.raises(ConfigError, match=r"^model.compile='yes': expected true or false$"):
        colorizer("cnn", "model.compile=yes")


def test_threads_default_to_the_physical_cores_left_by_the_workers(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        cores = physical_cores()
        assert 1 <= cores <= (torch.multiprocessing.cpu_count() or 1)
        assert default_num_threads(0) == cores and default_num_threads(cores + 3) == 1
        assert default_num_threads(0, processes=2) == max(1, cores // 2)
        assert set_num_threads(None, 0) == cores == torch.get_num_threads()
        assert set_num_threads(1, 5) == 1 == torch.get_num_threads()
        with pytest.raises(ConfigError, match=r"^trainer.num_threads=0: expected a positive number"):
            set_num_threads(0)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # set by the user: it wins over the default
        assert set_num_threads(None, 0) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


class _Threads(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return torch.get_num_threads()


def test_loader_workers_compute_with_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threads = next(iter(DataLoader(_Threads(), batch_size=2, num_workers=1)))
    finally:
        torch.set_num_threads(before)
    assert threads.tolist() == [1, 1]


def test_training_processes_of_a_node_share_its_cores(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = compose_config("train", ["trainer=ddp_cpu", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"])
    trainer = build_trainer(cfg.trainer, logger=False)  # `num_threads` is ours: not passed to the Trainer
    before = torch.get_num_threads()
    try:
        assert trainer.num_devices == 2
        assert use_threads(trainer, None, num_workers=0) == max(1, physical_cores() // 2)
        assert use_threads(trainer, 3, num_workers=0) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
