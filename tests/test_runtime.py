"""Inference settings (inference/runtime.py): precision, channels-last memory layout, compilation."""

from __future__ import annotations

import pytest
import torch

from colorization.errors import ConfigError
from colorization.inference.runtime import prepare_for_inference, resolve_precision
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
