"""Colorization metrics: one definition each, in standard units.

Every metric takes Lab images, ``(B, 3, H, W)`` with L in [0, 100] and a*, b* in standard CIE
units, as (prediction, target), so that all model families are scored by the same code. The
functional forms give per-image or per-pixel values; the `torchmetrics.Metric` classes accumulate
them over batches in float64 and synchronise across devices (sums, reduced with ``sum``).

sRGB-based metrics (MSE, PSNR, SSIM, colorfulness) convert Lab with `colorspaces.lab_to_rgb`
(kornia, D65, out-of-gamut colours clipped to [0, 1]); `ColorizationMetrics` converts each batch
once for all of them.

Pooling: pixel metrics (MSE, CIE76, CIEDE2000, AuC) are means over every pixel of the set;
image metrics (PSNR, SSIM, colorfulness) are computed per image and averaged over images, which
is how colorization papers report them (a PSNR of the pooled MSE would only restate the MSE
column).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric, MetricCollection

from colorization.color.spaces import lab_to_rgb
from colorization.metrics.fid import FID

UINT8_PEAK = 255.0
"""Peak value for PSNR and colorfulness: sRGB scaled to the uint8 range [0, 255]."""
SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
"""Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, and the stabilising constants."""
AUC_MAX_THRESHOLD = 150
"""Zhang et al. (2016): ab-error thresholds 0, 1, ..., 150."""
CIEDE2000_25_POW7 = 25.0**7


SRGBPair = tuple[Tensor, Tensor]
"""(prediction, target) as float32 sRGB in [0, 1], (B, 3, H, W) each: converted once per batch by
`ColorizationMetrics` and shared by every sRGB metric."""


def srgb(lab: Tensor) -> Tensor:
    """`lab_to_rgb` of (B, 3, H, W) Lab as float32 sRGB in [0, 1]."""
    return lab_to_rgb(lab.float())


def srgb_pair(pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> SRGBPair:
    """`rgb` when the caller already converted the pair, else the conversion of both."""
    return rgb if rgb is not None else (srgb(pred_lab), srgb(target_lab))


def squared_error_rgb(pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> Tensor:
    """Per-pixel squared sRGB error, averaged over the 3 channels, sRGB in [0, 1]; (B, H, W).

    `rgb`: the pair already converted to sRGB (see `SRGBPair`), if the caller has it."""
    pred_rgb, target_rgb = srgb_pair(pred_lab, target_lab, rgb)
    diff = pred_rgb - target_rgb
    return diff.square().mean(1)


def mse_rgb(pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> Tensor:
    """Per-image mean squared error of sRGB in [0, 1] (the study's MSE).

    ``mean_{c,h,w} (rgb_pred - rgb_target)^2`` over the three sRGB channels, range [0, 1].
    Returns a (B,) tensor.
    """
    return squared_error_rgb(pred_lab, target_lab, rgb).flatten(1).mean(1)


def psnr_rgb(pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> Tensor:
    """Per-image PSNR in dB of sRGB in the uint8 range: ``10 log10(255^2 / MSE_255)``; (B,).

    Equal to ``-10 log10(MSE)`` with MSE of sRGB in [0, 1]; the images are not rounded to
    integers. Higher is better; +inf for identical images, about 20-30 dB for colorizers.
    """
    mse_255 = mse_rgb(pred_lab, target_lab, rgb).double() * UINT8_PEAK**2
    return 10.0 * torch.log10(UINT8_PEAK**2 / mse_255)


def _gaussian_window(device: torch.device, dtype: torch.dtype) -> Tensor:
    """The normalised 1-D Gaussian of `SSIM_WINDOW` taps and std `SSIM_SIGMA`."""
    x = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    window = torch.exp(-(x**2) / (2 * SSIM_SIGMA**2))
    return window / window.sum()


def _local_mean(x: Tensor, window: Tensor) -> Tensor:
    """Gaussian-weighted mean of every full window of (N, C, H, W) `x` (separable, no padding)."""
    channels = x.shape[1]
    rows = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)


def ssim_rgb(pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> Tensor:
    """Per-image SSIM of sRGB (Wang et al. 2004), mean over the 3 channels; (B,), at most 1.

    Gaussian 11x11 window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1 for sRGB in [0, 1],
    population (co)variances, averaged over the windows that fit inside the image (a border of 5
    pixels is excluded): scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
    Computed in float32 (the local statistics dominate the cost of evaluation); agrees with
    scikit-image's float64 result to about 1e-5. Images must be at least 11x11.
    """
    x, y = srgb_pair(pred_lab, target_lab, rgb)
    window = _gaussian_window(x.device, x.dtype)
    # one grouped convolution over the five maps, written straight into a channels-last stack: on a
    # CPU about 5x faster than five calls in the default layout (oneDNN's slow depthwise path there)
    n, c, h, w = x.shape
    stacked = torch.empty((n, 5 * c, h, w), dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    stacked[:, :c], stacked[:, c : 2 * c] = x, y
    torch.mul(x, x, out=stacked[:, 2 * c : 3 * c])
    torch.mul(y, y, out=stacked[:, 3 * c : 4 * c])
    torch.mul(x, y, out=stacked[:, 4 * c :])
    moments = _local_mean(stacked, window).contiguous()  # back to NCHW: the arithmetic below vectorises there
    mu_x, mu_y, mean_xx, mean_yy, mean_xy = moments.chunk(5, dim=1)
    var_x = mean_xx - mu_x**2
    var_y = mean_yy - mu_y**2
    cov = mean_xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # (K * data range)^2 with data range 1
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.reshape(n, -1).mean(1)


def delta_e_cie76(pred_lab: Tensor, target_lab: Tensor) -> Tensor:
    """Per-pixel CIE76 colour difference Delta E*ab in standard Lab units, shape (B, H, W).

    ``sqrt(dL^2 + da^2 + db^2)``; 0 for identical colours, about 2.3 is a just-noticeable
    difference, and the sRGB gamut spans up to about 260. With the input L re-attached it is the
    ab distance.
    """
    return (pred_lab.float() - target_lab.float()).square().sum(1).sqrt()


def delta_e_ciede2000(pred_lab: Tensor, target_lab: Tensor) -> Tensor:
    """Per-pixel CIEDE2000 colour difference Delta E00 (kL = kC = kH = 1), shape (B, H, W).

    The CIE formula as written out by Sharma, Wu and Dalal (2005); it weighs lightness, chroma and
    hue differences by how visible they are, so it is smaller than CIE76 for saturated colours. 0
    for identical colours, about 1 is just noticeable. Computed in float32, the predictions'
    precision (within 1e-4 of a float64 evaluation per pixel, at half its cost; means accumulate
    in float64).
    """
    lab1, lab2 = pred_lab.float(), target_lab.float()
    l1, a1, b1 = lab1.unbind(1)
    l2, a2, b2 = lab2.unbind(1)
    c_mean = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    g = 0.5 * (1 - _chroma_weight(c_mean))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.remainder(torch.atan2(b1, a1p), 2 * math.pi)
    h2p = torch.remainder(torch.atan2(b2, a2p), 2 * math.pi)
    chroma_product = c1p * c2p
    achromatic = chroma_product == 0

    dl = l2 - l1
    dc = c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > math.pi, dh - 2 * math.pi, torch.where(dh < -math.pi, dh + 2 * math.pi, dh))
    dh = torch.where(achromatic, torch.zeros_like(dh), dh)
    d_hue = 2 * torch.sqrt(chroma_product) * torch.sin(dh / 2)

    l_mean = (l1 + l2) / 2
    cp_mean = (c1p + c2p) / 2
    h_sum = h1p + h2p
    # the mean hue goes the short way round the circle; undefined hues (zero chroma) just add
    wrap = (~achromatic) & ((h1p - h2p).abs() > math.pi)
    h_mean = torch.where(wrap, torch.where(h_sum < 2 * math.pi, h_sum + 2 * math.pi, h_sum - 2 * math.pi), h_sum)
    h_mean = torch.where(achromatic, h_mean, h_mean / 2)

    t = (
        1
        - 0.17 * torch.cos(h_mean - math.radians(30))
        + 0.24 * torch.cos(2 * h_mean)
        + 0.32 * torch.cos(3 * h_mean + math.radians(6))
        - 0.20 * torch.cos(4 * h_mean - math.radians(63))
    )
    # the exponent is capped at 80: below exp(-80) float32 turns subnormal, which CPUs compute slowly
    d_theta = math.radians(30) * torch.exp(-((torch.rad2deg(h_mean) - 275) / 25).square().clamp_max(80))
    r_c = 2 * _chroma_weight(cp_mean)
    l_offset = (l_mean - 50).square()
    s_l = 1 + 0.015 * l_offset / torch.sqrt(20 + l_offset)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    r_t = -torch.sin(2 * d_theta) * r_c
    dl, dc, d_hue = dl / s_l, dc / s_c, d_hue / s_h
    terms = dl.square() + dc.square() + d_hue.square() + r_t * dc * d_hue
    return torch.sqrt(terms.clamp_min(0))


def _chroma_weight(chroma: Tensor) -> Tensor:
    """``sqrt(C^7 / (C^7 + 25^7))``, CIEDE2000's chroma weighting (the 7th power by multiplication:
    `pow` with a float64 tensor is several times slower)."""
    square = chroma * chroma
    seventh = square * square * square * chroma
    return torch.sqrt(seventh / (seventh + CIEDE2000_25_POW7))


def ab_distance(pred_lab: Tensor, target_lab: Tensor) -> Tensor:
    """Per-pixel Euclidean distance of (a*, b*) in Lab units, (B, H, W): the error behind AuC."""
    return (pred_lab[:, 1:].double() - target_lab[:, 1:].double()).square().sum(1).sqrt()


def colorfulness(lab: Tensor, rgb: Tensor | None = None) -> Tensor:
    """Per-image colorfulness of Hasler & Suesstrunk (2003), absolute-difference variant; (B,).

    `colorfulness_of_rgb` on sRGB in [0, 255]. 0 for a gray image; natural photos score about
    20-60, higher is more colourful. `rgb`: `lab` already in sRGB.
    """
    rgb = srgb(lab) if rgb is None else rgb
    return colorfulness_of_rgb(rgb.float() * UINT8_PEAK).double()  # float32 statistics: within 1e-5 relative


def colorfulness_of_rgb(rgb: Tensor, eps: float = 0.0) -> Tensor:
    """Hasler & Suesstrunk's colorfulness of each (B, 3, H, W) sRGB image, in the units of `rgb`; (B,).

    ``rg = |R - G|``, ``yb = |(R + G)/2 - B|``,
    ``CF = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)`` with population
    standard deviations over the image's pixels (the variant of CT2 and DDColor). Differentiable;
    `eps` inside the square roots keeps the gradient finite for gray images (a loss needs it).
    """
    r, g, b = rgb.flatten(2).unbind(1)
    rg = (r - g).abs()
    yb = ((r + g) / 2 - b).abs()
    rg_mean, yb_mean = rg.mean(1, keepdim=True), yb.mean(1, keepdim=True)
    # population variances in two passes: 2.5x faster than `var` (Welford) on a CPU, as exact here
    spread = torch.sqrt((rg - rg_mean).square().mean(1) + (yb - yb_mean).square().mean(1) + eps)
    centre = torch.sqrt(rg_mean[:, 0] ** 2 + yb_mean[:, 0] ** 2 + eps)
    return spread + 0.3 * centre


class _Mean(Metric):
    """Mean of a per-pixel or per-image quantity (`values`) over every element seen, in float64."""

    full_state_update = False
    higher_is_better = False
    uses_srgb = False
    """True when `values` takes the pair's sRGB (``rgb=``) as well as its Lab."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @staticmethod
    def values(pred_lab: Tensor, target_lab: Tensor) -> Tensor:
        """Per-pixel or per-image values of the pair; those of sRGB metrics also take ``rgb``."""
        raise NotImplementedError

    def update(self, pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> None:
        values = self.values(pred_lab, target_lab, rgb=rgb) if self.uses_srgb else self.values(pred_lab, target_lab)
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


class MSE(_Mean):
    """Mean squared error of sRGB in [0, 1] over all pixels and channels (see `mse_rgb`); [0, 1]."""

    label, fmt = "MSE", "{:.4f}"

    uses_srgb = True
    values = staticmethod(squared_error_rgb)


class PSNR(_Mean):
    """Mean over images of the per-image PSNR in dB, sRGB in [0, 255] (see `psnr_rgb`)."""

    label, fmt = "PSNR dB", "{:.2f}"

    higher_is_better = True
    uses_srgb = True
    values = staticmethod(psnr_rgb)


class SSIM(_Mean):
    """Mean over images of the per-image sRGB SSIM (see `ssim_rgb`); at most 1."""

    label, fmt = "SSIM", "{:.4f}"

    higher_is_better = True
    uses_srgb = True
    values = staticmethod(ssim_rgb)


class CIE76(_Mean):
    """Mean per-pixel CIE76 Delta E*ab in standard Lab units (see `delta_e_cie76`)."""

    label, fmt = "CIE76 ΔE", "{:.2f}"

    values = staticmethod(delta_e_cie76)


class CIEDE2000(_Mean):
    """Mean per-pixel CIEDE2000 Delta E00 (see `delta_e_ciede2000`)."""

    label, fmt = "CIEDE2000", "{:.2f}"

    values = staticmethod(delta_e_ciede2000)


class Colorfulness(Metric):
    """Mean colorfulness of the predicted images (see `colorfulness`); the target's is kept too."""

    label, fmt = "CF", "{:.2f}"

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("pred_total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("target_total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    uses_srgb = True

    def update(self, pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> None:
        pred_rgb, target_rgb = srgb_pair(pred_lab, target_lab, rgb)
        self.pred_total += colorfulness(pred_lab, pred_rgb).sum()
        self.target_total += colorfulness(target_lab, target_rgb).sum()
        self.count += pred_lab.shape[0]

    def compute(self) -> Tensor:
        return self.pred_total / self.count


class DeltaColorfulness(Colorfulness):
    """|mean colorfulness of the predictions - mean colorfulness of the targets| over the set."""

    label, fmt = "ΔCF", "{:.2f}"

    higher_is_better = False

    def compute(self) -> Tensor:
        return ((self.pred_total - self.target_total) / self.count).abs()


class AucAB(Metric):
    """Zhang et al.'s AuC: area under the cumulative curve of per-pixel ab error, in [0, 1].

    For thresholds t = 0, 1, ..., 150 (Lab units) the fraction of pixels with
    ``ab_distance <= t`` is accumulated; the AuC is the trapezoidal area under that curve divided
    by 150, so identical images give 1 and higher is better.
    """

    label, fmt = "AuC ab", "{:.4f}"

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("hits", torch.zeros(AUC_MAX_THRESHOLD + 1, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred_lab: Tensor, target_lab: Tensor, rgb: SRGBPair | None = None) -> None:
        error = ab_distance(pred_lab, target_lab).flatten()
        # the first integer threshold >= error (151: none); a pixel counts for it and every larger one
        first = error.ceil().clamp_max(AUC_MAX_THRESHOLD + 1).long()
        per_threshold = torch.bincount(first, minlength=AUC_MAX_THRESHOLD + 2)[: AUC_MAX_THRESHOLD + 1]
        self.hits += per_threshold.cumsum(0).double()
        self.count += error.numel()

    def compute(self) -> Tensor:
        fraction = self.hits / self.count
        return torch.trapezoid(fraction, dx=1.0) / AUC_MAX_THRESHOLD


CHEAP_METRICS: dict[str, type[Metric]] = {"mse": MSE, "cie76": CIE76}
"""Logged at every validation: the metrics checkpointing and sweeps use."""
FULL_METRICS: dict[str, type[Metric]] = {
    "mse": MSE,
    "psnr": PSNR,
    "ssim": SSIM,
    "cie76": CIE76,
    "ciede2000": CIEDE2000,
    "auc_ab": AucAB,
    "colorfulness": Colorfulness,
    "delta_cf": DeltaColorfulness,
}
"""Every metric, in table order: logged at test time and by `evaluate.py`.

Each class says how tables show it: `label` (name and unit), `fmt` (number format) and
torchmetrics' `higher_is_better` (the arrow; None: neither), so a new metric is one entry here."""


OPTIONAL_METRICS: dict[str, type[Metric]] = {"fid": FID}
"""Metrics that need something only the user can supply, added after `FULL_METRICS` when given:
FID needs the Inception weights file (``evaluate.py fid.weights=PATH``, `colorization.metrics.fid`)."""


def metric_header(metric: type[Metric]) -> str:
    """A table header for `metric`: its label and better direction, e.g. ``PSNR dB ↑``."""
    arrow = {True: " ↑", False: " ↓"}.get(metric.higher_is_better, "")
    return f"{metric.label}{arrow}"


class ColorizationMetrics(MetricCollection):
    """Metrics of (prediction, target) Lab pairs that convert each pair to sRGB once per update.

    The conversion costs more than most metrics, so the collection does it once and hands the
    pair (`SRGBPair`, keyword ``rgb``) to every metric; none is made when no metric uses sRGB.
    A caller scoring several predictions against one target passes the target's `srgb` as
    ``target_rgb`` to convert it once for all of them; a prediction that *is* the target (the
    ground-truth row of an evaluation) reuses it.
    """

    def _srgb(self, pred_lab: Tensor, target_lab: Tensor, target_rgb: Tensor | None) -> dict[str, SRGBPair]:
        if not any(getattr(metric, "uses_srgb", False) for metric in self.values(copy_state=False)):
            return {}
        target_rgb = srgb(target_lab) if target_rgb is None else target_rgb
        pred_rgb = target_rgb if pred_lab is target_lab else srgb(pred_lab)
        return {"rgb": (pred_rgb, target_rgb)}

    def update(self, pred_lab: Tensor, target_lab: Tensor, target_rgb: Tensor | None = None) -> None:
        super().update(pred_lab, target_lab, **self._srgb(pred_lab, target_lab, target_rgb))

    def forward(self, pred_lab: Tensor, target_lab: Tensor, target_rgb: Tensor | None = None) -> dict[str, Tensor]:
        return super().forward(pred_lab, target_lab, **self._srgb(pred_lab, target_lab, target_rgb))


def gray_lab(l: Tensor) -> Tensor:
    """(B, 1, H, W) L -> (B, 3, H, W) Lab with a = b = 0: the gray baseline, a black-and-white photo left as it is."""
    return torch.cat([l, torch.zeros_like(l).expand(-1, 2, -1, -1)], dim=1)


class ImageCount(Metric):
    """How many images were scored (summed over processes): the n beside a row's numbers."""

    full_state_update = False
    higher_is_better = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred_lab: Tensor, target_lab: Tensor) -> None:
        self.count += pred_lab.shape[0]

    def compute(self) -> Tensor:
        return self.count


def baseline_metrics(prefix: str) -> MetricCollection:
    """What a training loop scores beside the model, keys ``<prefix>gray_cie76`` and ``<prefix>scored_images``:
    the gray baseline's CIE76 (updated with `gray_lab` of the batch's L and the target, so it covers exactly
    the images the model's metrics cover) and how many images that is."""
    return MetricCollection({"gray_cie76": CIE76(), "scored_images": ImageCount()}, prefix=prefix)


def colorization_metrics(
    prefix: str, full: bool = False, extra: dict[str, Metric] | None = None
) -> ColorizationMetrics:
    """The metrics a module logs, keys like ``val/cie76``: `CHEAP_METRICS`, or `FULL_METRICS` if `full`,
    then the ready `extra` ones (`OPTIONAL_METRICS` built with what they need)."""
    chosen = FULL_METRICS if full else CHEAP_METRICS
    return ColorizationMetrics({**{name: cls() for name, cls in chosen.items()}, **(extra or {})}, prefix=prefix)
