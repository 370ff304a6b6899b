"""User hints for SIGGRAPH17: random hints for training, and points given by a user at inference.

A hint is a patch of the ab image set to one colour, plus a 0/1 mask marking where hints are;
both go to the network next to L (`SIGGRAPH17Net`). Without hints both are zeros.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from colorization.color.spaces import AB_SCALE, rgb_to_lab
from colorization.errors import DataError

STOP_PROBABILITY = 1 / 8
"""After each hint, sampling stops with this probability: the count is geometric with mean 7."""
MAX_PATCH = 9
"""Patch sides are drawn uniformly from 1..MAX_PATCH pixels."""
DEFAULT_POINT_PATCH = 3
"""Side, in pixels at the network's working size, of the square a user's point colours."""


def sample_patches(
    batch: int,
    height: int,
    width: int,
    stop_probability: float = STOP_PROBABILITY,
    max_patch: int = MAX_PATCH,
    generator: torch.Generator | None = None,
) -> list[list[tuple[int, int, int]]]:
    """Random hint patches (top, left, side) for each of `batch` images of height x width (SIGGRAPH17's recipe).

    Per image a geometric number of patches (P(n) = (1 - p)^n p: none with probability p, mean
    (1 - p) / p), each a square of side 1..`max_patch` whose top-left corner is drawn from a
    normal distribution centred on the image (std a quarter of the free range), clipped inside.
    """
    image, top, left, side = _draw_patches(batch, height, width, stop_probability, max_patch, generator)
    patches: list[list[tuple[int, int, int]]] = [[] for _ in range(batch)]
    for i, t, l, s in zip(image.tolist(), top.tolist(), left.tolist(), side.tolist(), strict=True):
        patches[i].append((t, l, s))
    return patches


def sample_hints(
    ab: Tensor,
    stop_probability: float = STOP_PROBABILITY,
    max_patch: int = MAX_PATCH,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Training hints: (B, 2, H, W) true ab -> hint ab (B, 2, H, W) and 0/1 mask (B, 1, H, W).

    The patches of `sample_patches` (the same draws for the same `generator`), each revealing its mean
    true ab; where patches of one image overlap, the later one is shown. Drawn on the CPU and painted
    in a few batched operations on `ab`'s device: no value is read back and no per-patch kernel is
    launched, so a GPU step does not wait on the host.
    """
    batch, _, height, width = ab.shape
    image, top, left, side = (
        t.to(ab.device, non_blocking=True)
        for t in _draw_patches(batch, height, width, stop_probability, max_patch, generator)
    )
    # every patch as max_patch^2 pixel slots, those beyond its side masked out: (N, P) indices into one image plane
    offset = torch.arange(max_patch, device=ab.device)
    dy, dx = offset.repeat_interleave(max_patch), offset.repeat(max_patch)
    valid = (dy < side[:, None]) & (dx < side[:, None])
    plane = height * width
    position = (top[:, None] + dy).clamp_max(height - 1) * width + (left[:, None] + dx).clamp_max(width - 1)
    a_index = (image[:, None] * 2) * plane + position  # a* of the patch's pixels in the flat (B, 2, H, W) ab
    flat_ab = ab.reshape(-1)
    weights = valid.to(ab.dtype) / side[:, None].square().to(ab.dtype)
    means = torch.stack([(flat_ab[a_index] * weights).sum(1), (flat_ab[a_index + plane] * weights).sum(1)], 1)
    # each pixel shows the last patch of its image that covers it (patch numbers from 1; 0: none). Slots
    # outside a patch go to a last, discarded element rather than being dropped by a boolean index,
    # whose data-dependent size would make a GPU wait for the host.
    pixels = batch * plane
    pixel = torch.where(valid, image[:, None] * plane + position, pixels)  # in the flat (B, H, W) mask
    number = torch.arange(1, len(image) + 1, device=ab.device)[:, None].expand_as(pixel)
    owner = torch.zeros(pixels + 1, dtype=torch.long, device=ab.device)
    owner.scatter_reduce_(0, pixel.reshape(-1), number.reshape(-1), reduce="amax")
    shown = valid & (owner[pixel] == number)  # (N, P): this slot's pixel takes this patch's colour
    hint_ab = torch.zeros(2 * pixels + 1, dtype=ab.dtype, device=ab.device)
    for channel in range(2):
        target = torch.where(shown, a_index + channel * plane, 2 * pixels)
        hint_ab[target.reshape(-1)] = means[:, channel, None].expand_as(target).reshape(-1)
    mask = (owner[:pixels] > 0).to(ab.dtype).view(batch, 1, height, width)
    return hint_ab[: 2 * pixels].view_as(ab), mask


def _draw_patches(
    batch: int,
    height: int,
    width: int,
    stop_probability: float,
    max_patch: int,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`sample_patches` as four (N,) int64 CPU tensors: image index (ascending), top, left, side."""
    counts = _geometric(batch, stop_probability, generator)
    image = torch.repeat_interleave(torch.arange(batch), counts)
    total = image.numel()
    side = torch.randint(1, max_patch + 1, (total,), generator=generator).clamp_max(min(height, width))
    top = _normal_positions(height - side, generator)
    left = _normal_positions(width - side, generator)
    return image, top, left, side


def _geometric(size: int, stop_probability: float, generator: torch.Generator | None) -> Tensor:
    """`size` counts of failures before the first success, success probability `stop_probability`."""
    uniform = torch.rand(size, generator=generator, dtype=torch.float64).clamp_min(1e-12)
    return torch.floor(torch.log(uniform) / torch.log1p(torch.tensor(-stop_probability, dtype=torch.float64))).long()


def _normal_positions(free: Tensor, generator: torch.Generator | None) -> Tensor:
    """Corners in 0..free (int64) drawn from Normal((free + 1) / 2, (free + 1) / 4), clipped."""
    span = (free + 1).to(torch.float64)
    value = span / 2 + span / 4 * torch.randn(free.shape, generator=generator, dtype=torch.float64)
    return torch.minimum(value.clamp_min(0).floor().long(), free)


@dataclass(frozen=True)
class Hints:
    """Points (x, y, a, b) a user gives per image: pixel column, row, and the colour's a*, b*.

    `size` is the (height, width) of the image the coordinates refer to; `rasterize` maps them to
    any other size, so hints given on a full-size photo work at the network's working size.
    Each point colours a `patch` x `patch` square at the size it is rasterized at.
    """

    points: tuple[tuple[tuple[float, float, float, float], ...], ...]
    size: tuple[int, int]
    patch: int = DEFAULT_POINT_PATCH

    @classmethod
    def from_points(
        cls,
        points: Sequence[Sequence[Sequence[float]]],
        size: tuple[int, int],
        patch: int = DEFAULT_POINT_PATCH,
        source: str = "hints",
    ) -> Hints:
        """Validate and freeze per-image lists of (x, y, a, b); raises `DataError` naming `source`
        (the hints file, or what else the points came from), the hint's number and the bad point."""
        height, width = size
        frozen = []
        for image, image_points in enumerate(points):
            checked = []
            for number, point in enumerate(image_points, start=1):
                where = f"{source}: hint {number} {tuple(point)}" + (f" of image {image}" if len(points) > 1 else "")
                if len(point) != 4:
                    raise DataError(f"{where}: expected (x, y, a, b)")
                x, y, a, b = (_finite(v, where, "x, y, a and b") for v in point)
                if not (0 <= x < width and 0 <= y < height):
                    raise DataError(f"{where}: (x, y) outside the {width}x{height} image")
                if max(abs(a), abs(b)) > AB_SCALE:
                    raise DataError(f"{where}: a, b must lie in [-{AB_SCALE:g}, {AB_SCALE:g}]")
                checked.append((x, y, a, b))
            frozen.append(tuple(checked))
        if patch < 1:
            raise DataError(f"hint patch={patch} must be at least 1 pixel")
        return cls(tuple(frozen), (int(height), int(width)), int(patch))

    def rasterize(self, height: int, width: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """Hint ab (B, 2, height, width) and mask (B, 1, height, width) with the points scaled to that size."""
        batch = len(self.points)
        hint_ab = torch.zeros(batch, 2, height, width, device=device)
        mask = torch.zeros(batch, 1, height, width, device=device)
        scale_y, scale_x = height / self.size[0], width / self.size[1]
        half = (self.patch - 1) // 2
        for image, image_points in enumerate(self.points):
            for x, y, a, b in image_points:
                row, col = int(y * scale_y), int(x * scale_x)
                rows = slice(max(row - half, 0), row - half + self.patch)
                cols = slice(max(col - half, 0), col - half + self.patch)
                hint_ab[image, 0, rows, cols] = a
                hint_ab[image, 1, rows, cols] = b
                mask[image, :, rows, cols] = 1.0
        return hint_ab, mask


HEX_COLOUR = re.compile(r"^#([0-9a-fA-F]{6})$")


def hint_points(
    records: Sequence[Mapping[str, object]], source: str = "hints"
) -> list[tuple[float, float, float, float]]:
    """User hints as (x, y, a, b) points from records of the hints format.

    A record is ``{"x": px, "y": px, "color": "#rrggbb"}`` or ``{"x": px, "y": px, "ab": [a, b]}``;
    x, y are pixels of the original photo (column, row); a ``#rrggbb`` colour gives its a*, b*
    (its lightness is the photo's). Raises `DataError` naming `source` and the bad record.
    """
    points = []
    for number, record in enumerate(records, start=1):
        where = f"{source}: hint {number} ({dict(record) if isinstance(record, Mapping) else record!r})"
        if not isinstance(record, Mapping) or "x" not in record or "y" not in record:
            raise DataError(f"{where}: expected x, y and either color '#rrggbb' or ab [a, b]")
        x, y = (_finite(record[key], where, "x and y (pixels)") for key in ("x", "y"))
        points.append((x, y, *_hint_ab(record, where)))
    return points


def _finite(value: object, where: str, what: str) -> float:
    """`value` as a finite float; otherwise a `DataError` saying that `what` (of the hint at `where`) must be one.

    Python's JSON reader takes ``NaN`` and ``Infinity``, and ``float`` takes ``"nan"`` and ``"inf"``:
    such a hint would paint NaN into the network's input and blacken the photo.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise DataError(f"{where}: {what} must be finite numbers, not {value!r}")
    return number


def _hint_ab(record: Mapping[str, object], where: str) -> tuple[float, float]:
    colour, ab = record.get("color", record.get("colour")), record.get("ab")
    if isinstance(colour, str) and HEX_COLOUR.match(colour.strip()):
        value = int(colour.strip()[1:], 16)
        rgb = torch.tensor([(value >> 16) & 255, (value >> 8) & 255, value & 255], dtype=torch.float32) / 255
        lab = rgb_to_lab(rgb[None, :, None, None])[0, :, 0, 0]
        return float(lab[1]), float(lab[2])
    if isinstance(ab, Sequence) and not isinstance(ab, str) and len(ab) == 2:
        return _finite(ab[0], where, "a and b"), _finite(ab[1], where, "a and b")
    raise DataError(f"{where}: expected color '#rrggbb' or ab [a, b]")


def read_hints_file(path: str | Path) -> list[tuple[float, float, float, float]]:
    """(x, y, a, b) points from a JSON list of hint records or a CSV with columns ``x,y,color`` (or ``x,y,a,b``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"{path}: cannot read the hints file ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file; expected UTF-8 JSON or CSV hints") from None
    return parse_hints(text, path)


def parse_hints(text: str, path: str | Path) -> list[tuple[float, float, float, float]]:
    """(x, y, a, b) points from the text of a hints file; `path` names it in errors and its suffix gives the format."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(records, list):
            raise DataError(f'{path}: expected a JSON list of hints like {{"x": 10, "y": 20, "color": "#ff0000"}}')
    elif path.suffix.lower() == ".csv":
        rows = csv.DictReader(text.splitlines())
        if not rows.fieldnames or not {"x", "y"} <= set(rows.fieldnames):
            raise DataError(f"{path}: expected a CSV header x,y,color (or x,y,a,b)")
        records = [
            {
                "x": row["x"],
                "y": row["y"],
                **({"ab": [row["a"], row["b"]]} if row.get("a") else {"color": row.get("color")}),
            }
            for row in rows
        ]
    else:
        raise DataError(f"{path}: expected a .json or .csv hints file")
    return hint_points(records, str(path))
