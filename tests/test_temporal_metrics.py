"""Warping error and CDC against values worked out by hand, the occlusion rule's constants, and
both metrics rising when flicker is injected into a film."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from colorization.errors import DataError
from colorization.metrics.temporal import CDC, WarpingError, js_divergence, pair_warping_error
from colorization.video.flow import motion_boundary, occluded
from tests.helpers.clips import film_clip


def constant_flow(u: float, v: float = 0.0, size: int = 4) -> np.ndarray:
    return np.broadcast_to(np.array([u, v], np.float32), (size, size, 2)).copy()


def test_warping_error_of_a_known_shift_by_hand():
    # frame t is black; frame t+1 has column c at 51 c (0.2 c in [0, 1]); flow t -> t+1 is one pixel
    # to the right, so t+1 warped onto t shows column c + 1 at column c: 0.2, 0.4, 0.6 over columns
    # 0..2. Column 3's match falls outside t+1: occluded, left out.
    black = np.zeros((4, 4, 3), np.uint8)
    ramp = np.broadcast_to((51 * np.arange(4, dtype=np.uint8))[None, :, None], (4, 4, 3)).copy()
    error = pair_warping_error(black, ramp, constant_flow(1.0), constant_flow(-1.0))
    assert error == pytest.approx((0.2**2 + 0.4**2 + 0.6**2) / 3, rel=1e-6)

    film = WarpingError()
    film.update_pair(black, ramp, constant_flow(1.0), constant_flow(-1.0))
    film.update_pair(ramp, ramp, constant_flow(0.0), constant_flow(0.0))  # a still pair: 0
    assert film.compute() == pytest.approx(error / 2, rel=1e-6)


def test_warping_error_takes_uint8_and_float_frames_alike():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    flow = constant_flow(0.5, 0.25, size=6)
    assert pair_warping_error(a, b, flow, -flow) == pytest.approx(pair_warping_error(a / 255.0, b / 255.0, flow, -flow))


def test_a_pair_with_every_pixel_occluded_adds_zero():
    rng = np.random.default_rng(1)
    a, b = rng.random((2, 4, 4, 3))
    assert pair_warping_error(a, b, constant_flow(9.0), constant_flow(-9.0)) == 0.0  # every match leaves the frame


def test_forward_backward_rule_constants():
    # |w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5 with w = (2, 0): ŵ = (-1.2, 0) gives 0.64 > 0.5544 (occluded),
    # ŵ = (-1.4, 0) gives 0.36 < 0.5596 (visible). Columns 0..1 keep their match inside the frame.
    assert occluded(constant_flow(2.0), constant_flow(-1.2))[:, :2].all()
    assert not occluded(constant_flow(2.0), constant_flow(-1.4))[:, :2].any()


def test_motion_boundary_rule_constants():
    # |∇u|² > 0.01 |w|² + 0.002 across one step of u; |w|² ~ 0 here, so a step of 0.05 (0.0025) is a
    # boundary and one of 0.04 (0.0016) is not; only the pixel before the step sees it (forward differences).
    for step, expected in ((0.05, True), (0.04, False)):
        flow = np.zeros((4, 4, 2), np.float32)
        flow[:, 2:, 0] = step
        boundary = motion_boundary(flow)
        assert boundary[:, 1].all() == expected
        assert not boundary[:, [0, 2, 3]].any()


def alternating(frames: int) -> list[np.ndarray]:
    """P (all black) and Q (left half black, right half white), alternating."""
    black = np.zeros((4, 4, 3), np.uint8)
    half = black.copy()
    half[:, 2:] = 255
    return [black if t % 2 == 0 else half for t in range(frames)]


def test_cdc_by_hand():
    # JS(P, Q) with p = [1 at 0], q = [1/2 at 0, 1/2 at 255], m = [3/4, 1/4]:
    # KL(p||m) = ln(4/3), KL(q||m) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)  ->  JS = 3/4 ln(4/3).
    # Frames P Q P Q P: spacing 1 always differs (JS), spacings 2 and 4 never (0).
    cdc = CDC()
    for frame in alternating(5):
        cdc.update(frame)
    js = 0.75 * math.log(4 / 3)
    assert cdc.per_channel() == pytest.approx([js / 3] * 3)
    assert cdc.compute() == pytest.approx(js / 3)


def test_js_divergence_matches_scipy_entropy_as_the_cdc_code_uses_it():
    rng = np.random.default_rng(2)
    p, q = rng.random((2, 256))
    p[:40] = 0.0  # empty bins, as real histograms have
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    reference = 0.5 * scipy.stats.entropy(p, m) + 0.5 * scipy.stats.entropy(q, m)
    assert js_divergence(p, q) == pytest.approx(reference)
    assert js_divergence(p, q) != pytest.approx(scipy.spatial.distance.jensenshannon(p, q))  # that one is a sqrt


def test_too_short_films_are_refused():
    cdc, warping = CDC(), WarpingError()
    for frame in alternating(4):
        cdc.update(frame)
    with pytest.raises(DataError, match="at least 5 frames; got 4"):
        cdc.compute()
    with pytest.raises(DataError, match="at least 2 frames"):
        warping.compute()


def flickered(rgb: np.ndarray, seed: int = 3, amount: float = 0.08) -> np.ndarray:
    """Each frame's channels scaled by their own random gains (a colour flicker), clipped to [0, 1]."""
    gains = 1.0 + np.random.default_rng(seed).uniform(-amount, amount, (len(rgb), 1, 1, 3))
    return np.clip(rgb * gains, 0.0, 1.0).astype(np.float32)


def film_scores(clip, rgb: np.ndarray) -> tuple[float, float, float]:
    """(E_warp with the exact motion, E_warp with DIS on the gray input, CDC) of `rgb` frames."""
    height, width = rgb.shape[1:3]
    exact, estimated, cdc = WarpingError(), WarpingError(), CDC()
    for t, frame in enumerate(rgb):
        if t:
            exact.update_pair(
                rgb[t - 1], frame, clip.pan.flow(t - 1, t, height, width), clip.pan.flow(t, t - 1, height, width)
            )
        estimated.update(frame, clip.gray[t].astype(np.float32))
        cdc.update(frame)
    return exact.compute(), estimated.compute(), cdc.compute()


def test_both_metrics_grow_with_injected_flicker():
    clip = film_clip(frames=12)
    steady = film_scores(clip, clip.rgb)
    flickering = film_scores(clip, flickered(clip.rgb))
    for before, after in zip(steady, flickering, strict=True):
        assert after > 1.5 * before
