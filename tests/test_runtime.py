"""Inference settings (inference/runtime.py): precision, channels-last memory layout, compilation."""

from __future__ import annotations

import pytest
import torch

from colorization.errors import ConfigError
from colorization.inference.running import Runner
from colorization.inference.runtime import (
    autocast,
    has_fast_bf16,
    prepare_for_inference,
    resolve_precision,
    weights_for,
)
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


@pytest.mark.parametrize(
    "model",
    [
        "cnn",
        pytest.param(
            "eccv16",
            marks=pytest.mark.skipif(
                not has_fast_bf16(CPU),
                reason="no bf16 matrix units on this CPU: ECCV16's 256-px network takes minutes in bf16 here",
            ),
        ),
    ],
)
def test_bf16_output_is_float32_and_close_to_fp32_with_the_input_l_kept(model, photo_l):
    net = prepare_for_inference(colorizer(model))
    fp32, bf16 = net.colorize_full(photo_l), net.colorize_full(photo_l, precision="bf16")
    assert fp32.dtype == bf16.dtype == torch.float32 and bf16.shape == photo_l.shape[:1] + (3, *photo_l.shape[2:])
    assert torch.equal(bf16[:, :1], photo_l)  # L is the input's, untouched by the reduced precision
    error = delta_e_cie76(bf16, fp32)
    # bf16 keeps 8 bits of mantissa: the colours move a little, never wildly
    assert 0 < error.max() < 5 and error.mean() < 1


def autocast_each_call(model, l: torch.Tensor) -> torch.Tensor:
    """What bf16 inference did before the weights were cast once: autocast on the float32 master."""
    with torch.inference_mode(), autocast(CPU, "bf16"):
        return model.colorize(l).float()


def conv_weights(model) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def test_bf16_weights_are_cast_once_with_autocasts_result_and_the_fp32_master_untouched(photo_l):
    model = prepare_for_inference(colorizer("pix2pix", "model.generator.num_downs=3"))
    masters = [w.detach().clone() for w in conv_weights(model)]
    l = photo_l[..., :32]  # sides the U-Net takes as they are: colorize_full runs it on l itself
    first, second = model.colorize_full(l, precision="bf16"), model.colorize_full(l, precision="bf16")
    copy = weights_for(model, "bf16")
    assert weights_for(model, "bf16") is copy and weights_for(model, "fp32") is model
    assert all(w.dtype == torch.bfloat16 for w in conv_weights(copy))
    assert all(
        w.dtype == torch.float32 and torch.equal(w, m) for w, m in zip(conv_weights(model), masters, strict=True)
    )
    assert not copy.training and all(not m.training for m in copy.modules())
    # the same rounding of the same weights: bit for bit what autocast on the master gave
    assert torch.equal(first, second) and torch.equal(first, autocast_each_call(model, l))


def test_a_changed_master_weight_or_mode_is_followed_by_the_bf16_copy(photo_l):
    model = prepare_for_inference(colorizer("cnn"))
    before, copy = model.colorize_full(photo_l, precision="bf16"), weights_for(model, "bf16")
    with torch.no_grad():  # what an optimizer step does
        for w in conv_weights(model):
            w.mul_(1.5)
    after = model.colorize_full(photo_l, precision="bf16")
    assert weights_for(model, "bf16") is not copy and not torch.equal(after, before)
    assert torch.equal(after, autocast_each_call(model, photo_l))
    model.train()
    assert weights_for(model, "bf16").training


def test_the_runner_casts_the_weights_once_for_all_its_batches(photo_l, monkeypatch):
    import colorization.inference.runtime as runtime

    copies = []
    monkeypatch.setattr(runtime, "bf16_copy", lambda model, made=runtime.bf16_copy: copies.append(1) or made(model))
    model = colorizer("cnn")
    runner = Runner(model, CPU, "bf16")
    outputs = [runner(photo_l[i : i + 1]) for i in range(2)] + [runner(photo_l)]
    assert len(copies) == 1
    assert torch.equal(torch.cat(outputs[:2]), outputs[2])
    assert torch.equal(outputs[2], autocast_each_call(model, photo_l)[:, 1:])


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
