"""Suggested colours at a point: the likeliest ab bins of a hint-taking model's class head.

As in Zhang et al.'s interactive tool, the model itself proposes the few colours it finds
likely where the user clicked, given the hints already placed. The bins are taken in order of
probability, skipping any within `MIN_SEPARATION` of one already taken, so the swatches are
distinct colours rather than neighbouring cells of one. Each is shown at the photo's own
lightness there, which is how the hint will look.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from colorization.color.hints import Hints, hint_points
from colorization.color.spaces import lab_to_rgb_keep_l
from colorization.colorize.model import Plan
from colorization.errors import DataError
from colorization.files.photos import Photo
from colorization.inference.base import Colorizer

SUGGESTIONS = 8
MIN_SEPARATION = 15.0
"""ab units between suggested colours (the class head's grid step is 10)."""


def likely_bins(probabilities: Tensor, centres: Tensor, count: int = SUGGESTIONS, separation: float = MIN_SEPARATION):
    """(Q,) probabilities over bins with (Q, 2) ab centres -> [(a, b, probability)], likeliest first.

    Bins closer than `separation` to one already taken are skipped.
    """
    taken: list[tuple[float, float, float]] = []
    for index in probabilities.argsort(descending=True).tolist():
        a, b = centres[index].tolist()
        if all((a - ta) ** 2 + (b - tb) ** 2 >= separation**2 for ta, tb, _ in taken):
            taken.append((a, b, float(probabilities[index])))
            if len(taken) == count:
                break
    return taken


def hex_colour(l: float, a: float, b: float) -> str:
    """``#rrggbb`` of a Lab colour, its chroma reduced into the sRGB gamut at lightness `l`."""
    rgb = lab_to_rgb_keep_l(torch.tensor([l, a, b], dtype=torch.float32)[None, :, None, None])[0, :, 0, 0]
    red, green, blue = (int(round(float(v) * 255)) for v in rgb.clamp(0, 1))
    return f"#{red:02x}{green:02x}{blue:02x}"


@torch.inference_mode()
def suggest_colours(
    model: Colorizer,
    photo: Photo,
    x: float,
    y: float,
    hints: Sequence[dict] = (),
    device: torch.device | None = None,
    count: int = SUGGESTIONS,
) -> list[dict]:
    """The colours `model` finds likeliest at pixel (x, y) of `photo`, given the other `hints` (records).

    Returns ``[{"color": "#rrggbb", "ab": [a, b], "probability": p}]``, likeliest first. The
    model must have `colour_probabilities` (SIGGRAPH17).
    """
    height, width = photo.size
    if not (0 <= x < width and 0 <= y < height):
        raise DataError(f"point ({x}, {y}) lies outside the {width}x{height} photo")
    device = device or torch.device("cpu")
    small = Plan.of(model).shrink(photo.l)[None].to(device)
    point_hints = Hints.from_points([hint_points(hints)], size=photo.size) if hints else None
    probabilities = model.colour_probabilities(small, point_hints)[0]  # (Q, h, w)
    row = min(int(y * probabilities.shape[1] / height), probabilities.shape[1] - 1)
    col = min(int(x * probabilities.shape[2] / width), probabilities.shape[2] - 1)
    l = float(photo.l[0, int(y), int(x)])
    centres = model.quantizer.centres
    return [
        {"color": hex_colour(l, a, b), "ab": [round(a, 2), round(b, 2)], "probability": round(p, 4)}
        for a, b, p in likely_bins(probabilities[:, row, col].float().cpu(), centres.cpu(), count)
    ]


def hint_records(
    points: Sequence[Sequence[float]], photo: Photo, scale: tuple[float, float] = (1.0, 1.0)
) -> list[dict]:
    """Hint records for the page from (x, y, a, b) points: the exact ab, and a swatch at the photo's lightness.

    `photo` may be a scaled copy of the photo the points refer to: `scale` is its pixels per photo pixel.
    """
    records = []
    for x, y, a, b in points:
        l = float(photo.l[0, int(y * scale[1]), int(x * scale[0])])
        records.append({"x": x, "y": y, "ab": [a, b], "swatch": hex_colour(l, a, b)})
    return records


def scale_hints(records: Sequence[dict], scale: tuple[float, float]) -> list[dict]:
    """Hint records (any form of the hints format) moved onto a copy of the photo scaled by `scale` (x, y)."""
    return [{"x": x * scale[0], "y": y * scale[1], "ab": [a, b]} for x, y, a, b in hint_points(records)]
