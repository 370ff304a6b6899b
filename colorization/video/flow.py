"""Motion between gray frames: optical flow, backward warping and the occlusion check.

One definition of each, shared by the temporal filter (`colorization.video.deflicker`) and the
temporal metrics (`colorization.metrics.temporal`).

- Flow: OpenCV's DIS (Kroeger et al., ECCV 2016; no weights, a few ms per frame at a network's
  working size, `DIS_PRESET`) on frames normalised for exposure first: old films flicker in exposure by about
  +-10% from frame to frame, which brightness-constancy flow would otherwise read as motion.
- Conventions: a flow is (H, W, 2) float32 in pixels, [..., 0] horizontal (u, to the right) and
  [..., 1] vertical (v, down); ``flow_ab`` maps frame a's pixel x to x + flow_ab(x) in frame b,
  pixel centres at integer coordinates.
- Warping is backward with bilinear sampling: ``warp(b, flow_ab)(x) = b(x + flow_ab(x))`` brings
  frame b onto frame a's grid.
- Occlusion: the forward-backward rule of Ruder et al. (GCPR 2016) as Lai et al. (ECCV 2018)
  apply it in their public evaluation (``utils.detect_occlusion`` of
  phoenix104104/fast_blind_video_consistency): x in frame a is occluded where
  ``|w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5`` with w = flow_ab(x) and ŵ = flow_ba(x + w), or on a
  motion boundary where ``|∇u|² + |∇v|² > 0.01 |w|² + 0.002`` (forward differences, as there).
  Unlike their code, a pixel whose match x + w falls outside frame b is also occluded: there is
  nothing in b to compare it with.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

EXPOSURE_MEAN = 128.0
EXPOSURE_STD = 48.0
"""Every frame is mapped to this mean and standard deviation (8-bit codes) before flow is estimated."""
FLAT_STD = 1e-3
"""A frame whose L varies less than this (L units) is flat: it is centred, not stretched."""
OCCLUSION_RELATIVE = 0.01
OCCLUSION_ABSOLUTE = 0.5
"""Forward-backward rule: occluded where |w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5 (pixels²)."""
BOUNDARY_RELATIVE = 0.01
BOUNDARY_ABSOLUTE = 0.002
"""Motion boundary: |∇u|² + |∇v|² > 0.01 |w|² + 0.002."""
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_FAST
"""DIS's fast preset: on the tests' grainy pan it is as accurate as the medium one (0.077 vs 0.074 px mean
end-point error at 96x72, 0.060 for both at 320x240) and about 5x cheaper at 854x480 (15 vs 78 ms a call)."""


def normalize_exposure(l: np.ndarray) -> np.ndarray:
    """(H, W) L (any float scale) -> (H, W) uint8 with mean `EXPOSURE_MEAN` and std `EXPOSURE_STD`.

    A global gain and offset (an exposure change) leaves the result unchanged, so flow, scene-cut
    and photometric checks compare frames of different exposure fairly.
    """
    l = l.astype(np.float32)
    std = float(l.std())
    scale = EXPOSURE_STD / std if std > FLAT_STD else 0.0
    return np.clip((l - float(l.mean())) * scale + EXPOSURE_MEAN, 0, 255).round().astype(np.uint8)


class FlowEstimator:
    """Dense optical flow between two exposure-normalised gray frames (OpenCV DIS)."""

    def __init__(self, preset: int = DIS_PRESET) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(H, W) uint8 frames a, b -> (H, W, 2) float32 flow_ab (a's pixel x is at x + flow_ab(x) in b)."""
        return self._dis.calc(a, b, None)

    def pair(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow_ab, flow_ba): both directions, for `occluded`."""
        return self(a, b), self(b, a)


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float32 x and y of every pixel centre (read-only: shared between calls)."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _sampling_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = _pixel_grid(*flow.shape[:2])
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow_ab: np.ndarray) -> np.ndarray:
    """Frame b's (H, W) or (H, W, C) `image` sampled at x + flow_ab(x): b brought onto a's grid.

    Bilinear; a sample outside b takes the nearest border value (`inside` says where that happened).
    """
    map_x, map_y = _sampling_grid(flow_ab)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def inside(flow_ab: np.ndarray) -> np.ndarray:
    """(H, W) bool: where x + flow_ab(x) lies within frame b (pixel centres 0 .. W-1, 0 .. H-1)."""
    map_x, map_y = _sampling_grid(flow_ab)
    height, width = flow_ab.shape[:2]
    return (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)


def _squared_norm(flow: np.ndarray) -> np.ndarray:
    return flow[..., 0] ** 2 + flow[..., 1] ** 2


def motion_boundary(flow_ab: np.ndarray) -> np.ndarray:
    """(H, W) bool: |∇u|² + |∇v|² > 0.01 |w|² + 0.002, forward differences (0 on the last row/column)."""
    gradient = np.zeros(flow_ab.shape[:2], np.float32)
    dx = flow_ab[:, :-1] - flow_ab[:, 1:]
    dy = flow_ab[:-1, :] - flow_ab[1:, :]
    gradient[:, :-1] += (dx**2).sum(-1)
    gradient[:-1, :] += (dy**2).sum(-1)
    return gradient > BOUNDARY_RELATIVE * _squared_norm(flow_ab) + BOUNDARY_ABSOLUTE


def occluded(flow_ab: np.ndarray, flow_ba: np.ndarray) -> np.ndarray:
    """(H, W) bool on frame a's grid: occluded or on a motion boundary (module docstring), or matched outside b."""
    back = warp(flow_ba, flow_ab)  # ŵ(x + w(x))
    mismatch = _squared_norm(flow_ab + back)
    inconsistent = mismatch > OCCLUSION_RELATIVE * (_squared_norm(flow_ab) + _squared_norm(back)) + OCCLUSION_ABSOLUTE
    return inconsistent | motion_boundary(flow_ab) | ~inside(flow_ab)
