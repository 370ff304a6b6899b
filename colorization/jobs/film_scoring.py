"""Scoring colorized films (``evaluate.py data=video``): every source colorizes each film of the folder as
``colorize`` does, with the temporal filter and without it, and every row is scored frame by frame.

Rows: ``gray`` (each film's Y' with neutral chroma: what a black-and-white film shows), for every
source ``NAME`` (the default filter, ``--deflicker flow``) and ``NAME (deflicker none)``, and
``ground truth`` (the colour film as decoded). A source colorizes each film with
`colorization.inference.films.colorize_film` into ``films/<source>/<filter>/<film>.mp4`` in the run
directory, so what is scored is the file a user gets: full resolution, the film's own luma, encoded
at the default CRF and decoded as a player shows it (`colorization.video.io.rgb_of`).

- Image metrics (`colorization.metrics.image.colorization_metrics`) on every `frame_stride`-th
  frame, in Lab from the decoded 8-bit sRGB, pooled over the frames of all films as for photos.
- Temporal metrics (`colorization.metrics.temporal.TEMPORAL_METRICS`): ``cdc`` and ``warp_error``
  of each film over its consecutive frames, averaged over the films; the flows of the input frames
  are estimated once per pair and shared by every row.
- Speed: frames per second of `colorize_film` (decoding, network, filter and encoding together).

The films of one evaluation are read side by side, one frame of each at a time, so memory does not
grow with their length.
"""

from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from colorization.color.spaces import rgb_to_lab
from colorization.data.films import MIN_FRAMES, FilmFolder
from colorization.errors import DataError
from colorization.inference.films import colorize_film
from colorization.inference.sources import Source
from colorization.jobs.scoring import GRAY, GROUND_TRUTH, spread_positions
from colorization.metrics.image import SSIM_WINDOW, colorization_metrics, srgb
from colorization.metrics.temporal import CDC, TEMPORAL_METRICS, InputMotion, WarpingError
from colorization.video import FILTERS
from colorization.video.io import OUTPUT_SUFFIX, open_film, probe
from colorization.video.ycbcr import YCbCrSpec, luma_to_unit

FILMS_DIR = "films"
"""The run directory's folder of colorized films."""
UNFILTERED = " (deflicker none)"
"""Added to a source's name for its row without the temporal filter."""
WHITE_L = 100.0
"""The comparison sheet pads frames of another shape with white."""


@dataclass(frozen=True)
class FilmRow:
    """A source with a temporal filter setting: one row of the table."""

    source: Source
    deflicker: str

    @property
    def name(self) -> str:
        return self.source.name if self.deflicker == FILTERS[0] else self.source.name + UNFILTERED

    @property
    def folder(self) -> Path:
        """Where its films go in the run directory: ``films/<source>/<filter>``."""
        return Path(FILMS_DIR) / re.sub(r"[^\w.-]+", "_", self.source.name) / self.deflicker


@dataclass
class FilmScores:
    """What `score_films` measured, by row name (in `names` order)."""

    names: list[str]
    values: dict[str, dict[str, float]]
    speed: dict[str, float]
    kept: list[Tensor]
    """Per row, the (N, 3, H, W) Lab frames of the comparison sheet (the same frames for every row)."""
    frames: int = 0
    """Frames scored by the image metrics."""
    sizes: set[tuple[int, int]] = field(default_factory=set)
    """(width, height) of the films."""


def film_rows(sources: list[Source]) -> list[FilmRow]:
    """Every source with the filter on (the default), then off."""
    return [FilmRow(source, deflicker) for source in sources for deflicker in FILTERS]


def check_films(folder: FilmFolder) -> None:
    """Every film opens and has enough frames for the temporal metrics (as far as its header says), before any
    model runs."""
    for film in folder.films:
        info = probe(film)
        if min(info.width, info.height) < SSIM_WINDOW:
            raise DataError(
                f"{film}: {info.width}x{info.height} is smaller than SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window"
            )
        if info.frame_count is not None and info.frame_count < MIN_FRAMES:
            raise DataError(
                f"{film}: {info.frame_count} frames; the temporal metrics need films of at least {MIN_FRAMES}"
            )


def gray_rgb(y: np.ndarray, spec: YCbCrSpec) -> np.ndarray:
    """(H, W) uint8 Y' -> (H, W, 3) uint8 gray sRGB: the frame with neutral chroma, as a player shows it."""
    gray = np.round(luma_to_unit(y, spec) * 255.0).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def to_lab(rgb: np.ndarray, device: torch.device) -> Tensor:
    """(H, W, 3) uint8 sRGB -> (1, 3, H, W) Lab on `device`."""
    return rgb_to_lab(torch.from_numpy(rgb).to(device).permute(2, 0, 1)[None].float() / 255.0)


@torch.inference_mode()
def score_films(
    sources: list[Source],
    folder: FilmFolder,
    device: torch.device,
    precision: str,
    run_dir: Path,
    comparison_frames: int,
) -> FilmScores:
    """Colorize every film with every row's source and filter into `run_dir`, and score every row (module docstring).

    `comparison_frames` frames spread over the scored ones are kept for the comparison sheet.
    """
    check_films(folder)
    rows = film_rows(sources)
    scorer = _Scorer([GRAY, *(row.name for row in rows), GROUND_TRUTH], folder, device, comparison_frames)
    seconds = dict.fromkeys((row.name for row in rows), 0.0)
    frames = dict.fromkeys((row.name for row in rows), 0)
    for film in folder.films:
        outputs = {}
        for row in rows:
            target = run_dir / row.folder / folder.relative(film).with_suffix(OUTPUT_SUFFIX)
            result = colorize_film(
                film,
                target,
                row.source.model,
                device=device,
                precision=precision,
                deflicker=row.deflicker,
                max_frames=folder.max_frames,
            )
            outputs[row.name] = result.target
            seconds[row.name] += result.seconds
            frames[row.name] += result.frames
        scorer.add(film, outputs)
    return scorer.scores({name: frames[name] / max(seconds[name], 1e-12) for name in seconds})


def _scored_estimate(folder: FilmFolder) -> int:
    """About how many frames the image metrics will score (from the films' headers), to spread the kept ones."""
    total = 0
    for film in folder.films:
        count = probe(film).frame_count or folder.max_frames or MIN_FRAMES
        count = min(count, folder.max_frames or count)
        total += -(-count // folder.frame_stride)
    return total


class _Scorer:
    """The metrics of every row, fed one film at a time (`add`)."""

    def __init__(self, names: list[str], folder: FilmFolder, device: torch.device, comparison_frames: int) -> None:
        self.names, self.folder, self.device = names, folder, device
        self.image = {name: colorization_metrics("", full=True).to(device) for name in names}
        self.per_film: dict[str, dict[str, list[float]]] = {
            name: {key: [] for key in TEMPORAL_METRICS} for name in names
        }
        self.keep = set(spread_positions(_scored_estimate(folder), comparison_frames))
        self.kept: dict[str, list[Tensor]] = {name: [] for name in names}
        self.frames = 0
        self.sizes: set[tuple[int, int]] = set()

    def add(self, film: Path, outputs: dict[str, Path]) -> None:
        """Read the colour film and every row's output of it side by side, one frame of each at a time."""
        with ExitStack() as stack:
            truth = stack.enter_context(open_film(film, max_frames=self.folder.max_frames))
            made = {name: stack.enter_context(open_film(path)) for name, path in outputs.items()}
            spec = truth.info.ycbcr
            self.sizes.add((truth.info.width, truth.info.height))
            motion = InputMotion()
            cdc = {name: CDC() for name in self.names}
            warping = {name: WarpingError() for name in self.names}
            previous: dict[str, np.ndarray] = {}
            streams = [truth.frames(rgb=True), *(reader.frames(rgb=True) for reader in made.values())]
            for t, (frame, *colorized) in enumerate(zip(*streams, strict=True)):
                rgb = {GRAY: gray_rgb(frame.y, spec), **{n: c.rgb for n, c in zip(made, colorized, strict=True)}}
                rgb[GROUND_TRUTH] = frame.rgb
                flows = motion.update(frame.y)  # the input's motion: the gray film every row was made from
                for name, image in rgb.items():
                    cdc[name].update(image)
                    if flows is not None:
                        warping[name].update_pair(previous[name], image, *flows)
                previous = rgb
                if t % self.folder.frame_stride == 0:
                    self._add_frame(rgb)
        for name in self.names:
            try:
                self.per_film[name]["cdc"].append(cdc[name].compute())
                self.per_film[name]["warp_error"].append(warping[name].compute())
            except DataError as error:
                raise DataError(f"{film}: {error}") from None

    def _add_frame(self, rgb: dict[str, np.ndarray]) -> None:
        """One frame of every row into the image metrics (and the comparison sheet, when it is one of those kept)."""
        target = to_lab(rgb[GROUND_TRUTH], self.device)
        target_rgb = srgb(target)  # once for every row
        for name, image in rgb.items():
            lab = target if name == GROUND_TRUTH else to_lab(image, self.device)
            self.image[name].update(lab, target, target_rgb=target_rgb)
            if self.frames in self.keep:
                self.kept[name].append(lab.cpu())
        self.frames += 1

    def scores(self, speed: dict[str, float]) -> FilmScores:
        values = {}
        for name in self.names:
            values[name] = {key: float(value) for key, value in self.image[name].compute().items()}
            values[name] |= {key: float(np.mean(films)) for key, films in self.per_film[name].items()}
        kept = _same_size([self.kept[name] for name in self.names])
        return FilmScores(self.names, values, speed, kept, self.frames, self.sizes)


def _same_size(columns: list[list[Tensor]]) -> list[Tensor]:
    """Each row's kept (1, 3, H, W) frames as one (N, 3, H, W) batch, every frame fitted into the first's size
    (scaled to fit, the rest white): the films of a folder need not share a size."""
    if not columns[0]:
        return [torch.zeros(0, 3, 1, 1) for _ in columns]
    height, width = columns[0][0].shape[-2:]
    return [torch.cat([_fit(frame, height, width) for frame in frames]) for frames in columns]


def _fit(lab: Tensor, height: int, width: int) -> Tensor:
    """(1, 3, h, w) Lab scaled to fit inside (height, width), centred on white."""
    h, w = lab.shape[-2:]
    if (h, w) == (height, width):
        return lab
    scale = min(height / h, width / w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    scaled = F.interpolate(lab, size=size, mode="bilinear", antialias=True, align_corners=False)
    canvas = torch.zeros(1, 3, height, width)
    canvas[:, 0] = WHITE_L
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    canvas[..., top : top + size[0], left : left + size[1]] = scaled
    return canvas
