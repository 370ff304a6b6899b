"""Zhang et al. ECCV16 / SIGGRAPH17: release inference and weights, the training module, training.

Their networks' official layouts are tested in test_networks.py, the ab bins in test_ab_bins.py, the
hints in test_hints.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from colorization.color.ab_bins import (
    gamut_centres,
    grid_centres,
    saturated_images,
    smooth_prior,
)
from colorization.errors import ConfigError, DataError
from colorization.inference.loading import load_colorizer
from colorization.inference.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer
from colorization.jobs.train import train
from colorization.modules import ECCV16Module, SIGGRAPH17Module
from colorization.modules.build import build_module
from tests.helpers.weights import ZHANG_NETWORKS, random_release_state

# --- release inference -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ZHANG_NETWORKS))
@pytest.mark.parametrize("size", [(176, 176), (224, 224), (256, 256), (150, 200)])
def test_colorize_full_gives_the_input_size_and_keeps_its_l(name, size, release_files):
    model = load_colorizer(release_files[name])
    model.native_size = 64  # the resizing path is the same at 256; 64 keeps the test fast
    l = torch.rand(1, 1, *size) * 100
    lab = model.colorize_full(l)
    assert lab.shape == (1, 3, *size)
    assert torch.equal(lab[:, :1], l)


def test_eccv16_inference_follows_the_release_step_by_step(release_files):
    model = load_colorizer(release_files["eccv16"])
    net = model.net
    assert model.native_size == 256 and model.temperature == 1.0
    l = torch.rand(1, 1, 90, 70) * 100
    small = F.interpolate(l, size=(256, 256), mode="bicubic", align_corners=False, antialias=True).clamp(0, 100)
    x = (small - 50) / 100
    for block in (net.model1, net.model2, net.model3, net.model4, net.model5, net.model6, net.model7, net.model8):
        x = block(x)
    ab = F.interpolate(F.conv2d(F.softmax(x, dim=1), net.model_out.weight), scale_factor=4, mode="bilinear") * 110
    expected = torch.cat([l, F.interpolate(ab, size=(90, 70), mode="bilinear", align_corners=False)], dim=1)
    torch.testing.assert_close(model.colorize_full(l), expected, atol=1e-4, rtol=1e-4)


def test_siggraph17_without_hints_feeds_zero_hint_planes(release_files):
    model = load_colorizer(release_files["siggraph17"])
    l = torch.rand(2, 1, 32, 32) * 100
    zeros = torch.zeros(2, 1, 32, 32)
    _, ab = model.net(l, torch.cat([zeros, zeros], 1), zeros)
    torch.testing.assert_close(model.colorize(l), torch.cat([l, ab], dim=1))


# --- official weights ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ZHANG_NETWORKS))
def test_load_colorizer_recognises_a_release_file_and_loads_it_exactly(name, release_files):
    model = load_colorizer(release_files[name])
    assert isinstance(model, ECCV16Colorizer if name == "eccv16" else SIGGRAPH17Colorizer)
    assert not model.training
    loaded = model.net.state_dict()
    for key, value in random_release_state(name).items():
        assert torch.equal(loaded[key], value), key
    if name == "eccv16":
        assert model.net.num_bins == 313
        torch.testing.assert_close(model.bin_centres, grid_centres()[:313])


def test_model_weights_loads_the_release_through_the_config(release_files, tmp_path):
    from tests.helpers.configs import compose_config

    cfg = compose_config(
        "train", ["model=eccv16", f"++model.weights={release_files['eccv16']}", f"paths.output_dir={tmp_path}"]
    )
    model = build_module(cfg.model, "lab")
    assert torch.equal(model.net.model8[6].weight, random_release_state("eccv16")["model8.6.weight"])
    assert model.colorizer.temperature == 0.38


def test_a_siggraph17_file_does_not_load_as_eccv16(release_files):
    with pytest.raises(DataError, match=r"does not fit ECCV16Net; wrong shapes: model1.0.weight"):
        ECCV16Module(weights=str(release_files["siggraph17"]))


# --- the training module: pixel weights, decoding, settings ---------------------------------------


def test_unsaturated_images_weigh_zero():
    ab = torch.zeros(2, 2, 8, 8)
    ab[1, :, 3, 3] = 20.0
    ab[0] = 4.0  # within 5 everywhere: unsaturated
    assert saturated_images(ab).tolist() == [False, True]
    model = ECCV16Module()
    nearest = model.quantizer.encode_hard(ab)
    weights = model.pixel_weights(nearest, ab)
    assert weights[0].abs().sum() == 0 and (weights[1] > 0).all()


def test_eccv16_decodes_with_the_quantizers_centres():
    model = ECCV16Module(temperature=0.5)
    logits = torch.randn(1, model.quantizer.num_bins, 4, 4)
    via_network = model.net.decode(logits, (4, 4), temperature=0.5)
    torch.testing.assert_close(via_network, model.quantizer.decode(logits, 0.5), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": 0.0}, r"model.temperature=0.0: expected > 0"),
        ({"native_size": 4}, r"model.native_size=4: expected an integer >= 8 or null"),
        ({"colorspace": "rgb"}, r"colorspace.name='rgb'"),
        ({"stage": "gan"}, r"model.stage='gan' is unknown"),
        ({"decode": "mode"}, r"model.decode='mode' is unknown"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SIGGRAPH17Module(**kwargs)


# --- training -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_eccv16_trains_with_the_training_sets_prior_cached_beside_the_data(train_config, sample_root, tmp_path):
    overrides = ["model=eccv16", "++trainer.limit_train_batches=2", "callbacks.model_checkpoint.save_last=false"]
    metrics = train(train_config(*overrides, run_dir=tmp_path / "a"))
    assert math.isfinite(metrics["val/cie76"]) and math.isfinite(metrics["test/cie76"])
    caches = sorted((sample_root / "priors").glob("ab-counts-*.npy"))
    assert len(caches) == 1
    counts = np.load(caches[0])
    assert counts.shape == (gamut_centres().shape[0],) and counts.sum() > 0
    checkpoint = next((tmp_path / "a" / "checkpoints").glob("*.ckpt"))
    class_weights = torch.load(checkpoint, weights_only=True)["state_dict"]["class_weights"]  # training state
    prior = smooth_prior(torch.as_tensor(counts / counts.sum()), load_colorizer(checkpoint).bin_centres.double())
    assert (prior * class_weights.double()).sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_siggraph17_trains_in_two_stages(train_config, tmp_path):
    common = ["++trainer.limit_train_batches=2", "callbacks.model_checkpoint.save_last=false", "test=false"]
    first = train(train_config("model=siggraph17", *common, run_dir=tmp_path / "one"))
    assert math.isfinite(first["val/cie76"]) and math.isfinite(first["train/regression_epoch"])
    stage_one = next((tmp_path / "one" / "checkpoints").glob("*.ckpt"))
    second_cfg = train_config(
        "model=siggraph17_regression", f"++model.weights={stage_one}", *common, run_dir=tmp_path / "two"
    )
    second = train(second_cfg)
    assert math.isfinite(second["val/cie76"])
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["val/cie76"] == pytest.approx(
        second["val/cie76"]
    )


def test_a_checkpoint_of_a_run_started_from_release_weights_loads_without_that_file(release_files, tmp_path):
    release = tmp_path / release_files["eccv16"].name
    release.write_bytes(release_files["eccv16"].read_bytes())
    from tests.helpers.configs import compose_config

    cfg = compose_config("train", ["model=eccv16", f"++model.weights={release}", f"paths.output_dir={tmp_path}"])
    model = build_module(cfg.model, "lab")
    checkpoint = tmp_path / "last.ckpt"
    info = {"model": model.model_config, "colorspace": "lab"}
    torch.save({"state_dict": model.state_dict(), "colorization": info}, checkpoint)
    release.unlink()
    restored = load_colorizer(checkpoint)
    assert restored.net.num_bins == 313 and restored.temperature == 0.38
    assert torch.equal(restored.net.model8[6].weight, model.net.model8[6].weight)
