"""Fréchet Inception Distance (Heusel et al. 2017) between colorized photos and their originals.

FID = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) over the 2048-d pool features of the
TensorFlow-compatible InceptionV3 (`colorization.networks.inception`), fed sRGB rounded to 0..255 as
image files hold it. The weights are the file pytorch-fid and torch-fidelity use,
``pt_inception-2015-12-05-6726825d.pth``; nothing is downloaded, the user names the file
(``fid.weights=PATH``). Its name's 8 hex digits are checked against its sha256, and it must fit
the network exactly. Statistics are accumulated in float64 and the matrix square root is taken
through symmetric eigendecompositions, which stay real and stable where a general ``sqrtm`` of
the (non-symmetric) product can turn complex or lose digits.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor
from torchmetrics import Metric

from colorization.color.spaces import lab_to_rgb
from colorization.files.weights import load_strict, read_state_dict
from colorization.networks.inception import FEATURES, FIDInceptionV3

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
MIN_UNBIASED_IMAGES = 5000
"""FID is biased upwards on small sets; papers use at least this many images (Heusel et al., Chong & Forsyth 2020)."""


def load_fid_inception(path: str | Path) -> FIDInceptionV3:
    """The FID InceptionV3 with the weights of `path` (strict; sha256 prefix in the name checked), eval mode."""
    net = FIDInceptionV3()
    load_strict(net, read_state_dict(path), path)
    return net.eval().requires_grad_(False)


def psd_sqrt(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative rounding-error eigenvalues -> 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def trace_sqrt_product(sigma_1: Tensor, sigma_2: Tensor) -> Tensor:
    """tr((S_1 S_2)^(1/2)) for covariance matrices: = tr((A S_2 A)^(1/2)) with A = S_1^(1/2), a symmetric PSD matrix."""
    root_1 = psd_sqrt(sigma_1)
    middle = root_1 @ sigma_2 @ root_1
    middle = (middle + middle.T) / 2  # exact symmetry against rounding
    return torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()


def frechet_distance(mu_1: Tensor, sigma_1: Tensor, mu_2: Tensor, sigma_2: Tensor) -> float:
    """Fréchet distance between the Gaussians N(mu_1, S_1) and N(mu_2, S_2), computed in float64."""
    mu_1, sigma_1, mu_2, sigma_2 = (t.double() for t in (mu_1, sigma_1, mu_2, sigma_2))
    mean_term = (mu_1 - mu_2).square().sum()
    return float(mean_term + sigma_1.trace() + sigma_2.trace() - 2 * trace_sqrt_product(sigma_1, sigma_2))


def mean_and_covariance(count: Tensor, total: Tensor, outer: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance (divisor n - 1, as numpy.cov) from n, sum x and sum x x^T."""
    mean = total / count
    return mean, (outer - count * torch.outer(mean, mean)) / (count - 1)


def features_of_srgb(net: FIDInceptionV3, rgb: Tensor) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 2048) features of it rounded to 0..255, as an image file stores it."""
    return net((rgb.float() * 255).round())


class FID(Metric):
    """FID between predictions and targets (Lab), accumulating feature sums in float64 over batches.

    At least 2 images are needed; fewer than `MIN_UNBIASED_IMAGES` gives a biased (larger) value.
    """

    label, fmt = "FID", "{:.2f}"
    full_state_update = False
    higher_is_better = False
    uses_srgb = True

    def __init__(self, net: FIDInceptionV3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.net = net
        for side in ("pred", "target"):
            self.add_state(f"{side}_count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_sum", torch.zeros(FEATURES, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(FEATURES, FEATURES, dtype=torch.float64), dist_reduce_fx="sum")

    def _add(self, side: str, features: Tensor) -> None:
        features = features.double()
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + features.shape[0])
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + features.sum(dim=0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + features.T @ features)

    @torch.no_grad()
    def update(self, pred_lab: Tensor, target_lab: Tensor, rgb: tuple[Tensor, Tensor] | None = None) -> None:
        """`rgb`: the pair already converted to sRGB in [0, 1] by the caller, if it has it."""
        pred_rgb, target_rgb = (
            rgb if rgb is not None else (lab_to_rgb(pred_lab.float()), lab_to_rgb(target_lab.float()))
        )
        self._add("pred", features_of_srgb(self.net, pred_rgb))
        self._add("target", features_of_srgb(self.net, target_rgb))

    def compute(self) -> Tensor:
        if self.pred_count < 2:
            raise ValueError(f"FID needs at least 2 images, got {int(self.pred_count)}")
        pred = mean_and_covariance(self.pred_count, self.pred_sum, self.pred_outer)
        target = mean_and_covariance(self.target_count, self.target_sum, self.target_outer)
        return torch.tensor(frechet_distance(*pred, *target), dtype=torch.float64)
