"""Every metric against scikit-image or a direct NumPy formula, plus invariants and accumulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorization.color.spaces import lab_to_rgb
from colorization.metrics import image as M


def random_lab_pair(batch: int = 3, size: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two batches of Lab images from random smooth-ish sRGB (in gamut), (B, 3, size, size) each."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2 * batch, 3, size // 4, size // 4, generator=generator)
    rgb = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    rgb = (rgb + 0.1 * torch.rand(rgb.shape, generator=generator)).clamp(0, 1)
    lab = torch.from_numpy(rgb2lab(rgb.permute(0, 2, 3, 1).double().numpy())).permute(0, 3, 1, 2).float()
    return lab[:batch], lab[batch:]


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).double().numpy()


def srgb_numpy(lab: torch.Tensor) -> np.ndarray:
    """The sRGB every sRGB metric sees (the project's one Lab -> sRGB conversion), (B, H, W, 3)."""
    return hwc(lab_to_rgb(lab.float()))


def test_cie76_matches_scikit_image():
    pred, target = random_lab_pair()
    expected = deltaE_cie76(hwc(pred), hwc(target))
    # float32 Lab differences: agreement to 1e-4 Lab units
    np.testing.assert_allclose(M.delta_e_cie76(pred, target).numpy(), expected, atol=1e-4)


def test_ciede2000_matches_scikit_image_including_achromatic_and_hue_wrap():
    pred, target = random_lab_pair()
    # zero chroma (undefined hue) and hues either side of 0/360 degrees exercise every branch
    pred[0, 1:, :4] = 0.0
    pred[1, 1], pred[1, 2] = 30.0, -1.0
    target[1, 1], target[1, 2] = 30.0, 1.0
    expected = deltaE_ciede2000(hwc(pred), hwc(target))
    np.testing.assert_allclose(M.delta_e_ciede2000(pred, target).numpy(), expected, rtol=1e-5, atol=2e-4)


def test_ciede2000_matches_sharma_published_pairs():
    # Sharma, Wu & Dalal (2005), Table 1: pairs 1, 7, 17 and 25 and their Delta E00
    lab1 = [[50.0, 2.6772, -79.7751], [50.0, 0.0, 0.0], [50.0, 2.5, 0.0], [60.2574, -34.0099, 36.2677]]
    lab2 = [[50.0, 0.0, -82.7485], [50.0, -1.0, 2.0], [73.0, 25.0, -18.0], [60.4626, -34.1751, 39.4387]]
    expected = [2.0425, 2.3669, 27.1492, 1.2644]
    pred, target = (torch.tensor(rows, dtype=torch.float64).T.reshape(1, 3, 1, len(rows)) for rows in (lab1, lab2))
    np.testing.assert_allclose(M.delta_e_ciede2000(pred, target).flatten().numpy(), expected, atol=1e-4)


def test_psnr_matches_scikit_image_per_image():
    pred, target = random_lab_pair()
    pred_rgb, target_rgb = srgb_numpy(pred) * 255, srgb_numpy(target) * 255
    expected = [peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(pred_rgb, target_rgb, strict=True)]
    # float32 sRGB conversion: agreement to 1e-4 dB
    np.testing.assert_allclose(M.psnr_rgb(pred, target).numpy(), expected, atol=1e-4)


def test_ssim_matches_scikit_image_gaussian_wang_settings():
    pred, target = random_lab_pair()
    pred_rgb, target_rgb = srgb_numpy(pred), srgb_numpy(target)
    expected = [
        structural_similarity(
            p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1
        )
        for p, t in zip(pred_rgb, target_rgb, strict=True)
    ]
    # float32 local statistics vs scikit-image's float64: agreement to 1e-5
    np.testing.assert_allclose(M.ssim_rgb(pred, target).numpy(), expected, atol=1e-5)


def test_colorfulness_matches_numpy_formula():
    pred, _ = random_lab_pair()
    expected = []
    for image in srgb_numpy(pred) * 255:
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        rg, yb = np.abs(r - g), np.abs(0.5 * (r + g) - b)
        expected.append(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    np.testing.assert_allclose(M.colorfulness(pred).numpy(), expected, rtol=1e-5)


def test_auc_matches_numpy_cumulative_curve():
    pred, target = random_lab_pair()
    error = np.sqrt(((hwc(pred)[..., 1:] - hwc(target)[..., 1:]) ** 2).sum(-1)).ravel()
    thresholds = np.arange(151)
    curve = [(error <= t).mean() for t in thresholds]
    expected = np.trapezoid(curve, thresholds) / 150
    metric = M.AucAB()
    metric.update(pred, target)
    assert float(metric.compute()) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < expected < 1.0


def test_auc_counts_an_error_exactly_on_a_threshold_as_within_it():
    # ab errors 0, 1, 2.5, 150, 151 and 200 Lab units: the curve at t counts the pixels with error <= t
    errors = torch.tensor([0.0, 1.0, 2.5, 150.0, 151.0, 200.0], dtype=torch.float64)
    target = torch.zeros(1, 3, 1, errors.numel())
    pred = target.clone()
    pred[0, 1, 0] = errors.float()
    metric = M.AucAB()
    metric.update(pred, target)
    curve = [(errors <= t).double().mean().item() for t in range(151)]
    assert float(metric.compute()) == pytest.approx(np.trapezoid(curve) / 150, abs=1e-12)


@pytest.fixture
def conversions(monkeypatch) -> list[torch.Tensor]:
    """Every Lab image the metrics convert to sRGB from here on, in order."""
    converted = []

    def counted(lab: torch.Tensor) -> torch.Tensor:
        converted.append(lab)
        return lab_to_rgb(lab)

    monkeypatch.setattr(M, "lab_to_rgb", counted)
    return converted


def test_the_collection_converts_each_pair_to_srgb_once_and_scores_like_the_metrics_alone(conversions):
    pred, target = random_lab_pair()
    alone = {name: float(cls()(pred, target)) for name, cls in M.FULL_METRICS.items()}
    conversions.clear()
    collection = M.colorization_metrics("", full=True)
    collection.update(pred, target)
    assert len(conversions) == 2, "prediction and target, once each, for every sRGB metric together"
    for name, value in collection.compute().items():
        assert float(value) == pytest.approx(alone[name], rel=1e-6), name
    conversions.clear()
    M.colorization_metrics("", full=True)(pred, target)
    assert len(conversions) == 2
    conversions.clear()
    M.ColorizationMetrics({"cie76": M.CIE76(), "auc_ab": M.AucAB()}).update(pred, target)
    assert conversions == [], "no metric uses sRGB: nothing is converted"


def test_identical_images_score_perfectly():
    _, target = random_lab_pair()
    values = M.colorization_metrics("", full=True)(target, target)
    assert float(values["mse"]) == 0.0
    assert float(values["cie76"]) == 0.0
    assert float(values["ciede2000"]) == 0.0
    assert float(values["auc_ab"]) == 1.0
    assert float(values["delta_cf"]) == 0.0
    assert float(values["ssim"]) == pytest.approx(1.0, abs=1e-12)
    assert float(values["psnr"]) == float("inf")


def test_gray_prediction_cie76_is_mean_chroma_and_colorfulness_near_zero():
    _, target = random_lab_pair()
    gray = torch.cat([target[:, :1], torch.zeros_like(target[:, 1:])], dim=1)
    values = M.colorization_metrics("", full=True)(gray, target)
    mean_chroma = np.hypot(target[:, 1].double().numpy(), target[:, 2].double().numpy()).mean()
    assert float(values["cie76"]) == pytest.approx(mean_chroma, rel=1e-6)
    # a neutral Lab colour is R = G = B up to the float32 conversion
    assert float(values["colorfulness"]) < 0.05
    assert float(values["delta_cf"]) == pytest.approx(float(M.colorfulness(target).mean()), abs=0.05)


def test_the_loops_gray_baseline_is_the_mean_chroma_of_the_truth_over_the_images_seen():
    l = torch.rand(3, 1, 4, 5) * 100
    ab = torch.randn(3, 2, 4, 5) * 30
    baseline = M.baseline_metrics("val/")
    for part in (slice(0, 2), slice(2, 3)):
        baseline.update(M.gray_lab(l[part]), torch.cat([l[part], ab[part]], dim=1))
    values = baseline.compute()
    assert set(values) == {"val/gray_cie76", "val/scored_images"}
    assert int(values["val/scored_images"]) == 3
    assert float(values["val/gray_cie76"]) == pytest.approx(torch.hypot(ab[:, 0], ab[:, 1]).double().mean().item())


def test_metrics_accumulate_over_batches_like_one_batch():
    pred, target = random_lab_pair(batch=4)
    whole = M.colorization_metrics("", full=True)(pred, target)
    split = M.colorization_metrics("", full=True)
    split.update(pred[:1], target[:1])
    split.update(pred[1:], target[1:])
    for name, value in split.compute().items():
        assert float(value) == pytest.approx(float(whole[name]), rel=1e-9, abs=1e-12), name
        assert value.dtype == torch.float64


def test_validation_keeps_the_cheap_metrics_and_test_gets_all():
    assert set(M.colorization_metrics("val/").keys()) == {"val/mse", "val/cie76"}
    assert set(M.colorization_metrics("test/", full=True).keys()) == {f"test/{n}" for n in M.FULL_METRICS}


def test_a_target_converted_once_serves_every_prediction_scored_against_it(conversions):
    pred, target = random_lab_pair()
    expected = {name: float(v) for name, v in M.colorization_metrics("", full=True)(pred, target).items()}
    target_rgb = M.srgb(target)
    conversions.clear()
    shared = M.colorization_metrics("", full=True)
    shared.update(pred, target, target_rgb=target_rgb)
    assert len(conversions) == 1, "only the prediction is converted"
    assert {name: float(v) for name, v in shared.compute().items()} == expected
    conversions.clear()
    perfect = M.colorization_metrics("", full=True)
    perfect.update(target, target, target_rgb=target_rgb)
    assert conversions == [], "a prediction that is the target reuses its sRGB"
    assert float(perfect.compute()["ssim"]) == pytest.approx(1.0)
