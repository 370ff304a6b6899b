"""A training-free temporal filter on a colorized film's chroma: colours stop jumping between frames.

A per-frame colorizer sees each frame alone; film grain and exposure flicker change its input a
little every frame, and its colours jump. `Deflicker` follows the motion of the *input* frames
and blends each frame's predicted ab with the previous *output* ab carried along that motion,
wherever the previous frame saw the same surface:

    out_t(x) = pred_t(x) + w_t(x) * (warp(out_{t-1}, flow_{t->t-1})(x) - pred_t(x))

with ``w_t(x) = strength`` where x is visible in both frames and 0 elsewhere, i.e. an exponential
moving average along motion trajectories (about 1 / (1 - strength) frames long). Flow is computed
once per frame pair, both ways, on the exposure-normalised gray input. Visible means:

- the forward-backward check of `colorization.video.flow.occluded` passes (the match lies inside
  the previous frame, is consistent both ways, not on a motion boundary);
- the previous gray frame, warped here, looks like this one: the mean absolute difference over a
  3x3 patch is at most ``max(MATCH_FLOOR, match_factor x the frame's median)``. The median tracks
  grain and codec noise, so heavy grain does not switch the filter off (a fixed threshold of 8
  did: with 2.5x the tests' grain it left 0.64x the chroma warping error instead of 0.12x), while
  a flow that matched the wrong surface stands out of it. DIS smooths flow across object edges;
  without this check a moving square's colour was carried onto the background it uncovered (80
  of the 100 a* units between them), with it none is.

New and occluded pixels take the current prediction unchanged; L is never touched (only ab goes
in and out).

Measured on the tests' film (24 frames of a pan and zoom with grain and +-10% exposure flicker, a
colorizer whose colours jump with them; ``tests/test_deflicker.py``): the default strength 0.8
leaves 0.29x the chroma warping error of no filter (exact motion) and keeps 97% of the mean
chroma; 0.5 leaves 0.44x, 0.9 0.27x; beyond 0.8 the colour lags longer for little gain.

It works on the network's working resolution (the small L it saw and the small ab it predicted,
before ab is upsampled onto the full-resolution L): flow is far cheaper there, and that is where
the colours are decided. State is one frame (the previous gray frame, its output ab and its
histogram), so memory is bounded whatever the film's length. It is causal: a colour that changes
for good is followed with a lag of a few frames.

Scene cuts reset it: a cut is a jump in the histogram of the exposure-normalised gray frame
(`cut_distance`), or a frame in which fewer than `min_matched` of the pixels were visible in the
previous one; the first frame after a cut is the prediction itself, so no colour from before the
cut bleeds after it.

What it cannot fix: an object seen for the first time, or again after a long occlusion, takes the
colour the network gives it then (nothing earlier to carry); colour that is wrong but stable stays
wrong; flicker slower than the averaging window (a colour drifting over seconds) passes; fast
motion, motion blur and heavy grain make flow fail and fall back to the prediction there.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch
from torch import Tensor

from colorization.errors import ConfigError, DataError, check_choice
from colorization.video import FILTERS
from colorization.video.flow import FlowEstimator, normalize_exposure, occluded, warp

DEFAULT_STRENGTH = 0.8
"""Weight of the carried colour: 0.8 averages about 5 frames along the motion (module docstring)."""
MATCH_PATCH = 3
"""Matches are judged by the mean absolute gray difference over this square (grain averages out)."""
MATCH_FACTOR = 2.0
MATCH_FLOOR = 8.0
"""A match is trusted where its local difference is at most max(8, 2 x the frame's median local difference),
in exposure-normalised 8-bit codes: the median measures grain and codec noise, wrong matches stand out of it."""
CUT_HISTOGRAM_BINS = 32
CUT_DISTANCE = 0.2
"""A cut: the histograms of two exposure-normalised frames differ by more than this (total variation, 0..1;
the tests' cut measures 0.33, frames of one shot with grain, flicker and motion at most 0.06)."""
MIN_MATCHED = 0.2
"""A cut: fewer than this fraction of a frame's pixels were visible in the previous frame."""


class Deflicker:
    """Causal flow-guided blending of predicted ab with the previous output (module docstring).

    Call it once per frame, in order: ``ab = deflicker(l_small, ab_small)``; `reset` before a new film.
    """

    def __init__(
        self,
        strength: float = DEFAULT_STRENGTH,
        match_factor: float = MATCH_FACTOR,
        cut_distance: float = CUT_DISTANCE,
        min_matched: float = MIN_MATCHED,
    ) -> None:
        for key, value, high in (
            ("strength", strength, 0.99),
            ("cut_distance", cut_distance, 1.0),
            ("min_matched", min_matched, 1.0),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= high:
                raise ConfigError(f"deflicker {key}={value!r} is out of range; expected a number in [0, {high}]")
        if isinstance(match_factor, bool) or not isinstance(match_factor, int | float) or not match_factor > 0:
            raise ConfigError(f"deflicker match_factor={match_factor!r} is out of range; expected a number > 0")
        self.strength, self.match_factor = float(strength), float(match_factor)
        self.cut_distance, self.min_matched = float(cut_distance), float(min_matched)
        self._flow = FlowEstimator()
        self.cuts = 0
        """Scene cuts found since the last `reset` (the first frame of a film is not one)."""
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next one starts afresh (a new film)."""
        self._gray: np.ndarray | None = None
        self._ab: np.ndarray | None = None
        self._histogram: np.ndarray | None = None
        self.cuts = 0
        self.last_weight: np.ndarray | None = None
        """(h, w) float32 blend weight the last frame used (0 where it took the prediction as it is)."""

    def __call__(self, l_small: Tensor, ab_small: Tensor) -> Tensor:
        """(1, h, w) L in [0, 100] and (2, h, w) predicted ab -> (2, h, w) filtered ab (same dtype and device)."""
        if l_small.ndim != 3 or l_small.shape[0] != 1 or ab_small.shape != (2, *l_small.shape[1:]):
            raise DataError(
                f"deflicker expects (1, h, w) L and (2, h, w) ab of the same size; got {tuple(l_small.shape)} "
                f"and {tuple(ab_small.shape)}"
            )
        gray = normalize_exposure(l_small[0].detach().float().cpu().numpy())
        pred = ab_small.detach().float().cpu().numpy().transpose(1, 2, 0)  # (h, w, 2)
        histogram = np.bincount(gray.ravel() // (256 // CUT_HISTOGRAM_BINS), minlength=CUT_HISTOGRAM_BINS) / gray.size
        carried = self._carry(gray, histogram)
        if carried is None:
            out, self.last_weight = pred, np.zeros(gray.shape, np.float32)
        else:
            previous, self.last_weight = carried
            out = pred + self.last_weight[..., None] * (previous - pred)
        self._gray, self._ab, self._histogram = gray, out.astype(np.float32), histogram
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).to(ab_small.dtype).to(ab_small.device)

    def _carry(self, gray: np.ndarray, histogram: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The previous output ab warped onto this frame, (h, w, 2), and the (h, w) blend weights;
        None where the frame starts afresh (the first one, a cut, a new size)."""
        if self._gray is None or self._gray.shape != gray.shape or self.strength == 0.0:
            return None
        if 0.5 * np.abs(histogram - self._histogram).sum() > self.cut_distance:
            self.cuts += 1
            return None
        to_previous, from_previous = self._flow.pair(gray, self._gray)
        visible = self._matched(gray, to_previous) & ~occluded(to_previous, from_previous)
        if visible.mean() < self.min_matched:
            self.cuts += 1
            return None
        return warp(self._ab, to_previous), visible.astype(np.float32) * self.strength

    def _matched(self, gray: np.ndarray, to_previous: np.ndarray) -> np.ndarray:
        """(h, w) bool: where the previous gray frame, warped here, looks like this one (module docstring)."""
        difference = np.abs(gray.astype(np.float32) - warp(self._gray, to_previous).astype(np.float32))
        local = cv2.blur(difference, (MATCH_PATCH, MATCH_PATCH))
        return local <= max(MATCH_FLOOR, self.match_factor * float(np.median(local)))


TemporalFilter = Callable[[Tensor, Tensor], Tensor]
"""(1, h, w) L and (2, h, w) ab of the next frame -> its (2, h, w) ab: `Deflicker`, or another filter."""


def make_deflicker(name: str = "flow", **settings: float) -> Deflicker | None:
    """The temporal filter called `name` (`FILTERS`); None for ``none``."""
    check_choice("deflicker", name, FILTERS)
    return Deflicker(**settings) if name == "flow" else None
