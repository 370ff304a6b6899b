"""Temporal consistency of a colorized film: warping error and colour distribution consistency.

Both are accumulators fed one frame (or frame pair) at a time, so a long film is never held in
memory; `compute` gives the film's value, and a set of films is scored by the plain mean of their
values (as both papers do). Frames are (H, W, 3) RGB arrays, uint8 or float in [0, 1].

**Warping error** E_warp (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018), as
their public ``evaluate_WarpError.py`` computes it (phoenix104104/fast_blind_video_consistency):
for each pair (t, t+1), output frame t+1 is warped onto frame t with the forward flow of the
*input* frames (bilinear, `colorization.video.flow.warp`); the squared RGB difference ([0, 1]
scale) is summed over the non-occluded pixels and all channels and divided by (non-occluded
pixels x channels); a pair with no non-occluded pixel divides by all of them (it adds 0). The
film's E_warp is the mean over its T - 1 pairs. Occlusion is their forward-backward rule
(`colorization.video.flow.occluded`). Where this differs: flow comes from OpenCV's DIS on
exposure-normalised gray input frames instead of FlowNet2 (no weights to download; absolute
values are therefore not comparable with published tables, comparisons between methods scored
here are), and a pixel whose match leaves the frame counts as occluded.

**CDC**, colour distribution consistency (Liu et al., "Temporally Consistent Video Colorization
with Deep Feature Propagation and Self-regularization Learning"), as their public
``codes/compute_hist.py`` (lyh-18/TCVC-Temporally-Consistent-Video-Colorization) computes it: each
frame's 256-bin histogram per channel (8-bit values, normalised by H x W), the Jensen-Shannon
divergence (natural log: 0.5 KL(p || m) + 0.5 KL(q || m), m = (p + q) / 2) between frames 1, 2
and 4 apart, averaged over the pairs of each spacing, weighted 1/3 each, then averaged over the
three channels. (SciPy's ``jensenshannon`` returns the square root of this divergence; it is not
used.) Float frames are rounded to 8 bits first, as the frames they scored were 8-bit images.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from colorization.errors import DataError
from colorization.video.flow import FlowEstimator, normalize_exposure, occluded, warp

CDC_DILATIONS = (1, 2, 4)
CDC_WEIGHTS = (1 / 3, 1 / 3, 1 / 3)
HISTOGRAM_BINS = 256


def unit_rgb(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float RGB -> float32 in [0, 1] (uint8 / 255; floats as they are)."""
    _check_rgb(frame)
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)


def uint8_rgb(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float RGB in [0, 1] -> uint8 (floats rounded, as saving an 8-bit image does)."""
    _check_rgb(frame)
    if frame.dtype == np.uint8:
        return frame
    return np.clip(np.round(frame.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _check_rgb(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise DataError(f"a frame of shape {frame.shape}; expected (H, W, 3) RGB")


def pair_warping_error(frame: np.ndarray, following: np.ndarray, flow_fw: np.ndarray, flow_bw: np.ndarray) -> float:
    """E_warp of one pair: frames t and t+1 (H, W, 3), the input's flows t -> t+1 and t+1 -> t (H, W, 2)."""
    frame, following = unit_rgb(frame), unit_rgb(following)
    if frame.shape != following.shape or flow_fw.shape[:2] != frame.shape[:2] or flow_bw.shape != flow_fw.shape:
        raise DataError(
            f"frames {frame.shape} and {following.shape} with flows {flow_fw.shape} and {flow_bw.shape}; "
            "expected two (H, W, 3) frames and two (H, W, 2) flows of the same H, W"
        )
    visible = ~occluded(flow_fw, flow_bw)
    squared = (warp(following, flow_fw) - frame) ** 2 * visible[..., None]
    count = int(visible.sum()) * frame.shape[2] or squared.size
    return float(squared.sum() / count)


class InputMotion:
    """The flows between consecutive *input* frames that E_warp warps with, estimated once per pair.

    Several outputs of one input film (models, filters) share them: `update` each input frame once,
    then give the flows to each output's `WarpingError.update_pair`.
    """

    def __init__(self, flow: FlowEstimator | None = None) -> None:
        self._flow = flow or FlowEstimator()
        self._previous: np.ndarray | None = None

    def update(self, input_l: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Input frame t's (H, W) L (any gray scale; exposure is normalised) -> (flow t-1 -> t, flow t -> t-1),
        each (H, W, 2); None for the first frame."""
        gray = normalize_exposure(input_l)
        flows = self._flow.pair(self._previous, gray) if self._previous is not None else None
        self._previous = gray
        return flows


class WarpingError:
    """One film's E_warp, fed frame by frame (module docstring).

    Either `update(output, input_l)` with each output frame and its input's L (flows estimated here,
    `InputMotion`, one previous frame kept), or `update_pair` with flows from elsewhere.
    """

    label, fmt = "E_warp", "{:.4g}"
    higher_is_better = False
    """How tables show it (as `colorization.metrics.image` metrics say)."""

    def __init__(self, flow: FlowEstimator | None = None) -> None:
        self._motion = InputMotion(flow)
        self.total = 0.0
        self.pairs = 0
        self._previous: np.ndarray | None = None

    def update(self, output: np.ndarray, input_l: np.ndarray) -> None:
        """Add output frame t (H, W, 3) and its input's (H, W) L (any gray scale; exposure is normalised)."""
        flows = self._motion.update(input_l)
        if flows is not None:
            self.update_pair(self._previous, output, *flows)
        self._previous = output

    def update_pair(self, frame: np.ndarray, following: np.ndarray, flow_fw: np.ndarray, flow_bw: np.ndarray) -> float:
        """Add one pair (see `pair_warping_error`); returns its error."""
        error = pair_warping_error(frame, following, flow_fw, flow_bw)
        self.total += error
        self.pairs += 1
        return error

    def compute(self) -> float:
        """The mean over the pairs added; a `DataError` if there were none (a film of one frame)."""
        if self.pairs == 0:
            raise DataError("warping error needs at least 2 frames; got fewer")
        return self.total / self.pairs


def channel_histograms(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (3, 256) float64: each channel's 8-bit histogram divided by H x W."""
    frame = uint8_rgb(frame)
    pixels = frame.shape[0] * frame.shape[1]
    return np.stack([np.bincount(frame[..., c].ravel(), minlength=HISTOGRAM_BINS) for c in range(3)]) / pixels


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log) of distributions along the last axis: (..., K) -> (...)."""
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        ratio = np.divide(a, m, out=np.ones_like(a), where=a > 0)  # 0 log 0 = 0
        return (a * np.log(ratio)).sum(-1)

    return 0.5 * kl(p) + 0.5 * kl(q)


class CDC:
    """One film's colour distribution consistency, fed frame by frame; keeps the last 4 frames' histograms."""

    label, fmt = "CDC", "{:.4g}"
    higher_is_better = False

    def __init__(self, dilations: Sequence[int] = CDC_DILATIONS, weights: Sequence[float] = CDC_WEIGHTS) -> None:
        self.dilations, self.weights = tuple(dilations), tuple(weights)
        self._history: deque[np.ndarray] = deque(maxlen=max(self.dilations))
        self._sums = {d: np.zeros(3) for d in self.dilations}
        self._counts = dict.fromkeys(self.dilations, 0)
        self.frames = 0

    def update(self, frame: np.ndarray) -> None:
        """Add the next (H, W, 3) RGB frame."""
        histograms = channel_histograms(frame)
        for d in self.dilations:
            if len(self._history) >= d:
                self._sums[d] += js_divergence(self._history[-d], histograms)
                self._counts[d] += 1
        self._history.append(histograms)
        self.frames += 1

    def per_channel(self) -> np.ndarray:
        """(3,) the weighted divergence of each channel (R, G, B for RGB frames)."""
        if any(self._counts[d] == 0 for d in self.dilations):
            raise DataError(f"CDC needs at least {max(self.dilations) + 1} frames; got {self.frames}")
        return sum(w * self._sums[d] / self._counts[d] for d, w in zip(self.dilations, self.weights, strict=True))

    def compute(self) -> float:
        """The film's CDC: `per_channel` averaged over the three channels."""
        return float(self.per_channel().mean())


TEMPORAL_METRICS: dict[str, type] = {"cdc": CDC, "warp_error": WarpingError}
"""The film metrics, in table order, after the image metrics (``evaluate.py data=video``): one value per film,
averaged over the films."""
