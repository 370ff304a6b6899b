"""FID: the Fréchet distance against scipy, the InceptionV3's layout and features against torch-fidelity's."""

from __future__ import annotations

import hashlib
import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from colorization.errors import DataError
from colorization.metrics.fid import FID, FID_WEIGHTS_NAME, frechet_distance, load_fid_inception, mean_and_covariance
from colorization.networks.inception import FIDInceptionV3, resize_bilinear_tf1

REFERENCE = Path(__file__).parent / "reference" / "fid_inception_state_dict.tsv"


def scipy_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """The formula as pytorch-fid writes it, with scipy's general matrix square root."""
    root, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root.real))


def random_gaussian(rng: np.random.Generator, dim: int, n: int):
    x = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) + rng.normal(size=dim)
    return x.mean(0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("dim, n", [(8, 100), (64, 500), (64, 40)])  # the last one is rank-deficient (n < dim)
def test_frechet_distance_matches_scipy_sqrtm(dim: int, n: int):
    rng = np.random.default_rng(dim + n)
    a, b = random_gaussian(rng, dim, n), random_gaussian(rng, dim, n)
    expected = scipy_frechet(*a, *b)
    ours = frechet_distance(*(torch.from_numpy(t) for t in (*a, *b)))
    assert ours == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_frechet_distance_of_a_gaussian_with_itself_is_zero_and_of_shifted_is_the_shift():
    rng = np.random.default_rng(0)
    mu, sigma = (torch.from_numpy(t) for t in random_gaussian(rng, 32, 200))
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8
    assert frechet_distance(mu, sigma, mu + 3.0, sigma) == pytest.approx(9.0 * 32, rel=1e-9)


def test_covariance_from_sums_equals_numpy_cov():
    x = torch.randn(50, 6, dtype=torch.float64)
    mean, cov = mean_and_covariance(torch.tensor(50.0, dtype=torch.float64), x.sum(0), x.T @ x)
    torch.testing.assert_close(mean, x.mean(0))
    torch.testing.assert_close(cov, torch.from_numpy(np.cov(x.numpy(), rowvar=False)))


def read_table(path: Path) -> dict[str, tuple[int, ...]]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("#")]
    return {key: tuple(int(s) for s in shape.strip("()").split(",") if s.strip()) for key, shape, _ in rows}


def test_state_dict_layout_is_the_official_files():
    net = FIDInceptionV3()
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert ours == read_table(REFERENCE)
    assert sum(p.numel() for p in net.parameters()) == 23_850_960


def calibrated_random_inception(seed: int) -> FIDInceptionV3:
    """Random weights whose BatchNorm statistics come from one pass over random images, so that
    activations keep a healthy scale through all 94 layers (untrained defaults let them fade)."""
    torch.manual_seed(seed)
    net = FIDInceptionV3()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one batch sets the statistics
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.uniform_(module.bias, -0.2, 0.2)
    net.train()
    with torch.no_grad():
        net(torch.randint(0, 256, (4, 3, 80, 80)).float())
    return net.eval()


TEST_REFERENCE = Path(sys.prefix) / "test-reference"
"""`make install` puts torch-fidelity here (pip --no-deps --target), off sys.path: installed in the
environment it would make torchmetrics import it, and with it torchvision, which cannot be installed."""


def import_torch_fidelity(module: str) -> types.ModuleType:
    """A module of torch-fidelity, imported from `TEST_REFERENCE` without running its package __init__."""
    folder = TEST_REFERENCE / "torch_fidelity"
    assert folder.is_dir(), f"{folder}: missing; make install adds torch-fidelity there as a test-only dependency"
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(folder)]
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.startswith("torch_fidelity")}
    sys.modules["torch_fidelity"] = package
    try:
        return importlib.import_module(f"torch_fidelity.{module}")
    finally:
        for name in [n for n in sys.modules if n.startswith("torch_fidelity")]:
            del sys.modules[name]
        sys.modules.update(saved)


@pytest.mark.slow
def test_features_equal_torch_fidelity_on_the_same_random_weights(tmp_path: Path):
    net = calibrated_random_inception(0)
    weights = tmp_path / "random-inception.pth"
    torch.save(net.state_dict(), weights)
    module = import_torch_fidelity("feature_extractor_inceptionv3")
    # its own strict load_state_dict of our file also proves the key names and shapes agree
    reference = module.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=weights
    )
    images = torch.randint(0, 256, (3, 3, 75, 120), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    with torch.no_grad():
        (expected,) = reference(images)
        ours = net(images)
    assert ours.shape == (3, 2048) and expected.abs().mean() > 1e-2, "features must not have faded to zero"
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_tf1_resize_matches_torch_fidelity():
    resize = import_torch_fidelity("interpolate_compat_tensorflow")
    x = torch.rand(2, 3, 37, 53) * 255
    expected = resize.interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    torch.testing.assert_close(resize_bilinear_tf1(x, 299), expected, rtol=0, atol=1e-4)


def write_weights(path: Path, state_dict: dict) -> Path:
    """Save a state dict under the official name pattern, with its own sha256 prefix."""
    tmp = path.parent / "tmp.pth"
    torch.save(state_dict, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    final = path.parent / f"{path.name}-{digest}.pth"
    tmp.rename(final)
    return final


def test_loading_is_strict_and_checks_the_sha256_prefix(tmp_path: Path):
    state = FIDInceptionV3().state_dict()
    good = write_weights(tmp_path / "pt_inception", state)
    net = load_fid_inception(good)
    loaded = net.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in state.items()), "every weight is the file's"
    assert not net.training and not any(p.requires_grad for p in net.parameters()), "a frozen feature extractor"
    renamed = tmp_path / FID_WEIGHTS_NAME
    renamed.write_bytes(good.read_bytes())
    with pytest.raises(DataError, match="sha256 does not start with 6726825d"):
        load_fid_inception(renamed)
    del state["fc.bias"]
    broken = write_weights(tmp_path / "partial", state)
    with pytest.raises(DataError, match=r"missing keys: fc.bias \(1 in all\)"):
        load_fid_inception(broken)


@pytest.mark.slow
def test_fid_grows_with_added_noise():
    # FID of a set with itself is 0: the ground truth row of the next test (each compute costs seconds)
    net = calibrated_random_inception(3)
    torch.manual_seed(0)
    lab = torch.cat([torch.rand(6, 1, 40, 40) * 80 + 10, torch.rand(6, 2, 40, 40) * 60 - 30], dim=1)
    lab = torch.nn.functional.avg_pool2d(lab, 3, 1, 1)  # a little spatial structure
    values = []
    for noise in (5.0, 20.0):
        metric = FID(net)
        noisy = lab.clone()
        noisy[:, 1:] += noise * torch.randn_like(noisy[:, 1:])
        for start in (0, 3):  # two batches: the statistics accumulate
            metric.update(noisy[start : start + 3], lab[start : start + 3])
        values.append(float(metric.compute()))
    assert 0 < values[0] < values[1]


@pytest.mark.slow
def test_evaluate_adds_fid_with_its_image_count_and_warns_on_small_sets(sample_root: Path, tmp_path: Path):
    from colorization.jobs.evaluate import evaluate
    from tests.helpers.configs import evaluate_config

    weights = write_weights(tmp_path / "pt_inception-2015-12-05", calibrated_random_inception(0).state_dict())
    out = tmp_path / "eval"
    rows = evaluate(evaluate_config(sample_root, out, "data.limit=4", f"fid.weights={weights}", "~logger"))
    gray, truth = rows[0], rows[-1]
    # FID of a set with itself is 0 (4 images span 3 of 2048 dimensions: zero eigenvalues' rounding remains)
    assert abs(truth["fid"]) < 1e-4 * gray["fid"] and gray["fid"] > 0
    markdown = (out / "results.md").read_text()
    assert "| FID ↓ |" in markdown and f"{gray['fid']:.2f} (n=4)" in markdown
    assert "Warning: FID from 4 images; below 5,000 it is biased upwards" in markdown
    assert "fid" in (out / "results.csv").read_text().splitlines()[0].split(",")


def test_without_weights_there_is_no_fid_column_and_a_note_says_how_to_add_it(sample_root: Path, tmp_path: Path):
    from colorization.jobs.evaluate import evaluate
    from tests.helpers.configs import evaluate_config

    out = tmp_path / "eval"
    rows = evaluate(evaluate_config(sample_root, out, "data.limit=4", "~logger"))
    assert "fid" not in rows[0]
    markdown = (out / "results.md").read_text()
    assert "FID" not in markdown.split("\n\n")[2]  # the table
    note = [line for line in markdown.splitlines() if "FID" in line]
    assert note == [
        "FID is not computed: add `fid.weights=/path/to/pt_inception-2015-12-05-6726825d.pth` (the Inception "
        "weights pytorch-fid and torch-fidelity use; nothing is downloaded)."
    ]
    assert "fid" not in (out / "results.csv").read_text().splitlines()[0].split(",")


def test_a_missing_weights_file_stops_evaluate_in_one_line(sample_root: Path, tmp_path: Path):
    from colorization.jobs.evaluate import evaluate
    from tests.helpers.configs import evaluate_config

    with pytest.raises(DataError, match="nothing.pth: weights file not found"):
        evaluate(evaluate_config(sample_root, tmp_path / "eval", f"fid.weights={tmp_path / 'nothing.pth'}"))
    assert not (tmp_path / "eval").exists()
