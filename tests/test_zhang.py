"""Zhang et al. ECCV16 / SIGGRAPH17: official layout and weights, release inference, bins, hints, training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from colorization.color.ab_bins import (
    ABQuantizer,
    annealed_mean,
    gamut_centres,
    grid_centres,
    rebalancing_weights,
    saturated_images,
    smooth_prior,
)
from colorization.color.hints import Hints, sample_hints, sample_patches
from colorization.color.spaces import rgb_to_lab
from colorization.data import LabArrays
from colorization.data.ab_prior import cached_bin_counts
from colorization.data.batches import AB_CV_OFFSET
from colorization.errors import ConfigError, DataError
from colorization.files.weights import load_strict, read_state_dict
from colorization.inference.loading import load_colorizer
from colorization.inference.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer
from colorization.jobs.train import train
from colorization.modules import ECCV16Module, SIGGRAPH17Module
from colorization.modules.build import build_module
from colorization.networks import ECCV16Net
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


def test_a_siggraph17_file_does_not_load_as_eccv16(release_files):
    with pytest.raises(DataError, match=r"does not fit ECCV16Net; wrong shapes: model1.0.weight"):
        ECCV16Module(weights=str(release_files["siggraph17"]))


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


# --- quantizer, rebalancing, decoding -------------------------------------------------------------


def srgb_colours(count: int = 4000) -> torch.Tensor:
    """(1, 2, count, 1) ab of random sRGB colours, which all lie in the gamut's bins."""
    rgb = torch.rand(1, 3, count, 1, generator=torch.Generator().manual_seed(0))
    return rgb_to_lab(rgb)[:, 1:]


def test_gamut_bins_cover_the_srgb_gamut_within_half_a_bin():
    quantizer = ABQuantizer(gamut_centres())
    assert 200 < quantizer.num_bins < 313
    ab = srgb_colours()
    decoded = quantizer.centres[quantizer.encode_hard(ab)].permute(0, 3, 1, 2)
    assert (decoded - ab).abs().amax() <= 5.0 + 1e-4


def test_the_529_grid_encodes_within_half_a_bin_in_the_reference_order():
    quantizer = ABQuantizer(grid_centres())
    assert quantizer.num_bins == 529
    ab = (torch.rand(1, 2, 500, 1) - 0.5) * 219
    index = quantizer.encode_hard(ab)
    assert ((quantizer.centres[index].permute(0, 3, 1, 2) - ab).abs().amax()) <= 5.0 + 1e-4
    expected = torch.round((ab[:, 0] + 110) / 10) * 23 + torch.round((ab[:, 1] + 110) / 10)
    assert torch.equal(index, expected.long())


def test_soft_encoding_spreads_over_the_nearest_bins_and_sums_to_one():
    quantizer = ABQuantizer(gamut_centres())
    ab = srgb_colours(500)
    indices, weights = quantizer.encode_soft(ab)
    assert indices.shape == weights.shape == (1, 5, 500, 1)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(1, 500, 1))
    assert torch.equal(indices[:, 0], quantizer.encode_hard(ab)), "the nearest bin comes first"
    assert (weights[:, :-1] >= weights[:, 1:] - 1e-6).all(), "weights fall with distance"
    distance = (quantizer.centres[indices[0, :, 0, 0]] - ab[0, :, 0, 0]).norm(dim=1)
    gaussian = torch.exp(-distance.square() / 50)
    torch.testing.assert_close(weights[0, :, 0, 0], gaussian / gaussian.sum())


def test_rebalancing_weights_have_expectation_one_under_the_prior():
    centres = gamut_centres()
    raw = torch.rand(centres.shape[0], dtype=torch.float64) ** 4
    prior = smooth_prior(raw / raw.sum(), centres.double())
    assert prior.sum().item() == pytest.approx(1.0)
    weights = rebalancing_weights(prior, 0.5)
    assert (prior * weights).sum().item() == pytest.approx(1.0)
    assert weights[prior.argmin()] > weights[prior.argmax()], "rare colours weigh more"
    torch.testing.assert_close(rebalancing_weights(prior, 1.0), torch.ones_like(prior))


def test_unsaturated_images_weigh_zero():
    ab = torch.zeros(2, 2, 8, 8)
    ab[1, :, 3, 3] = 20.0
    ab[0] = 4.0  # within 5 everywhere: unsaturated
    assert saturated_images(ab).tolist() == [False, True]
    model = ECCV16Module()
    nearest = model.quantizer.encode_hard(ab)
    weights = model.pixel_weights(nearest, ab)
    assert weights[0].abs().sum() == 0 and (weights[1] > 0).all()


def test_annealed_mean_is_the_mean_at_t1_and_the_mode_as_t_goes_to_0():
    centres = gamut_centres()
    logits = torch.randn(2, centres.shape[0], 3, 4, generator=torch.Generator().manual_seed(1)) * 3
    mean = torch.einsum("bqhw,qc->bchw", logits.softmax(1), centres)
    torch.testing.assert_close(annealed_mean(logits, centres, 1.0), mean)
    mode = centres[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(annealed_mean(logits, centres, 1e-4), mode, atol=1e-3, rtol=0)
    between = annealed_mean(logits, centres, 0.38)
    assert (between - mean).abs().mean() > 0 and (between - mode).abs().mean() > 0


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


# --- hints -----------------------------------------------------------------------------------------


def test_hint_patches_follow_the_geometric_size_and_position_laws():
    generator = torch.Generator().manual_seed(0)
    patches = sample_patches(6000, 64, 48, generator=generator)
    counts = np.array([len(p) for p in patches])
    assert counts.mean() == pytest.approx(7.0, abs=0.35)  # (1 - 1/8) / (1/8)
    assert (counts == 0).mean() == pytest.approx(1 / 8, abs=0.015)
    flat = np.array([patch for image in patches for patch in image])
    tops, lefts, sides = flat.T
    assert set(sides) == set(range(1, 10))
    assert np.bincount(sides)[1:] / len(sides) == pytest.approx(np.full(9, 1 / 9), abs=0.01)
    assert (tops + sides <= 64).all() and (lefts + sides <= 48).all() and (tops >= 0).all() and (lefts >= 0).all()
    free = 64 - sides
    # corners are truncated to integers (as in the reference), which lowers their mean by 1/2
    assert np.mean(tops + 0.5 - (free + 1) / 2) == pytest.approx(0.0, abs=0.25)
    assert np.std(tops / (free + 1)) == pytest.approx(0.25, abs=0.02)


def test_sampled_hints_reveal_each_patchs_mean_colour():
    ab = (torch.rand(200, 2, 24, 24, generator=torch.Generator().manual_seed(0)) - 0.5) * 100
    hint_ab, mask = sample_hints(ab, stop_probability=0.5, generator=torch.Generator().manual_seed(3))
    replay = sample_patches(200, 24, 24, stop_probability=0.5, generator=torch.Generator().manual_seed(3))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hint_ab * mask, hint_ab), "no hint outside the mask"
    checked = 0
    for image, patches in enumerate(replay):
        if len(patches) == 1:
            top, left, side = patches[0]
            patch = ab[image, :, top : top + side, left : left + side]
            torch.testing.assert_close(hint_ab[image, :, top, left], patch.mean(dim=(1, 2)))
            assert mask[image].sum() == side * side
            checked += 1
        elif not patches:
            assert mask[image].sum() == 0
    assert checked > 20


def test_overlapping_hint_patches_are_painted_in_order_as_one_patch_at_a_time_would():
    ab = (torch.rand(16, 2, 20, 20, generator=torch.Generator().manual_seed(1)) - 0.5) * 100
    hint_ab, mask = sample_hints(ab, stop_probability=0.05, generator=torch.Generator().manual_seed(2))
    replay = sample_patches(16, 20, 20, stop_probability=0.05, generator=torch.Generator().manual_seed(2))
    expected_ab, expected_mask, cover = torch.zeros_like(ab), torch.zeros(16, 1, 20, 20), torch.zeros(16, 20, 20)
    for image, patches in enumerate(replay):
        for top, left, side in patches:
            rows, cols = slice(top, top + side), slice(left, left + side)
            expected_ab[image, :, rows, cols] = ab[image, :, rows, cols].mean(dim=(1, 2), keepdim=True)
            expected_mask[image, :, rows, cols] = 1.0
            cover[image, rows, cols] += 1
    assert (cover >= 2).sum() > 100, "the draw must overlap patches to test their order"
    torch.testing.assert_close(hint_ab, expected_ab)
    assert torch.equal(mask, expected_mask)


def test_user_hints_scale_to_the_working_size_and_change_the_colours():
    hints = Hints.from_points([[(10, 20, 60.0, -30.0)]], size=(40, 80), patch=1)
    hint_ab, mask = hints.rasterize(80, 160)
    assert mask.sum() == 1 and mask[0, 0, 40, 20] == 1
    assert hint_ab[0, :, 40, 20].tolist() == [60.0, -30.0]
    model = SIGGRAPH17Module(native_size=32).eval()
    l = torch.rand(1, 1, 40, 80) * 100
    guided, plain = model.colorize_full(l, hints=hints), model.colorize_full(l)
    assert guided.shape == plain.shape == (1, 3, 40, 80)
    assert (guided - plain).abs().amax() > 1e-3
    with pytest.raises(DataError, match="hints for 1 images given with a batch of 2"):
        model.colorize(torch.rand(2, 1, 16, 16) * 100, hints=hints)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[(80, 0, 0, 0)]], r"outside the 80x40 image"),
        ([[(0, 0, 0, 120)]], r"a, b must lie in \[-110, 110\]"),
        ([[(1, 2, 3)]], r"expected \(x, y, a, b\)"),
    ],
)
def test_bad_hint_points_are_refused(points, message):
    with pytest.raises(DataError, match=message):
        Hints.from_points(points, size=(40, 80))


# --- training -------------------------------------------------------------------------------------


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


def test_the_prior_counts_every_training_pixel_once_and_is_reused(kaggle_root):
    arrays = LabArrays(kaggle_root)
    quantizer = ABQuantizer(grid_centres())
    train_images = np.array([0, 2, 3, 7])
    counts = cached_bin_counts(arrays, train_images, quantizer.centres, quantizer.lookup_table())
    expected = torch.zeros(quantizer.num_bins, dtype=torch.long)
    for index in train_images:
        _, ab_cv = arrays.read(int(index))
        ab = torch.from_numpy(ab_cv).permute(2, 0, 1)[None].float() - AB_CV_OFFSET
        expected += torch.bincount(quantizer.encode_hard(ab).flatten(), minlength=quantizer.num_bins)
    assert counts.sum() == 4 * 24 * 24 and np.array_equal(counts, expected.numpy())
    (cache,) = (kaggle_root / "priors").glob("ab-counts-*.npy")
    stamp = cache.stat().st_mtime_ns
    again = cached_bin_counts(arrays, train_images, quantizer.centres, quantizer.lookup_table())
    assert np.array_equal(again, counts) and cache.stat().st_mtime_ns == stamp, "read back, not recomputed"
    cached_bin_counts(arrays, train_images[:2], quantizer.centres, quantizer.lookup_table())
    assert len(list((kaggle_root / "priors").glob("ab-counts-*.npy"))) == 2, "other images, other key"


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
