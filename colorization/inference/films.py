"""Colorize films, streaming: decode -> shrink L -> batch -> colorizer -> deflicker -> chroma -> encode.

The colorizer is any per-frame callable on the network's working size, so this module does not
depend on the package's model classes:

- ``shrink(l)``: (1, H, W) L in [0, 100] at full resolution -> (1, h, w) L at the working size.
- ``colorize_small(l)``: (B, 1, h, w) L -> (B, 2, h, w) ab (any device; read back as float32).

Each frame's predicted ab goes through the temporal filter (`colorization.video.deflicker`) at
the working size, is upsampled bilinearly onto the full-resolution L (as photos are), turned
into sRGB keeping L (`colorization.color.spaces.lab_to_rgb_keep_l`) and into the output's Cb/Cr;
the output keeps the input's Y' plane (`colorization.video.ycbcr`). Audio and subtitles are
carried as `colorization.video.io` describes. Memory holds one batch of frames plus the
filter's one-frame state, whatever the film's length. The output is written atomically: a
killed or failed run leaves no file under the final name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from colorization.files.atomic import atomic_write
from colorization.color.spaces import lab_to_rgb_keep_l
from colorization.errors import ConfigError, DataError, check_int
from colorization.video.deflicker import Deflicker, TemporalFilter, make_deflicker
from colorization.video.io import (
    DEFAULT_CRF,
    FilmReader,
    FilmWriter,
    Frame,
    VideoInfo,
    check_crf,
    open_film,
    output_path,
)
from colorization.video.ycbcr import luma_to_l, rgb_to_cbcr

log = logging.getLogger(__name__)

DEFAULT_BATCH = 8
MAX_BATCH = 1024

ColorizeSmall = Callable[[Tensor], Tensor]
"""(B, 1, h, w) L in [0, 100] -> (B, 2, h, w) ab."""
Shrink = Callable[[Tensor], Tensor]
"""(1, H, W) L in [0, 100] -> (1, h, w) L at the network's working size."""


@dataclass(frozen=True)
class Progress:
    """Where a film's colorization is: reported after every batch."""

    source: Path
    frames: int
    total: int | None
    """The film's estimated frame count (None if unknown; a section's is not estimated)."""
    elapsed_s: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far, None if the total or the rate is unknown."""
        if self.total is None or self.frames_per_s == 0:
            return None
        return max(self.total - self.frames, 0) / self.frames_per_s


@dataclass(frozen=True)
class FilmResult:
    """One colorized film."""

    source: Path
    target: Path
    frames: int
    seconds: float

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def colorize_video(
    source: str | Path,
    target: str | Path,
    colorize_small: ColorizeSmall,
    shrink: Shrink,
    deflicker: str | TemporalFilter | None = "flow",
    crf: int = DEFAULT_CRF,
    start_s: float | None = None,
    end_s: float | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[Progress], None] | None = None,
) -> FilmResult:
    """Colorize the film `source` into the MP4 `target` (written atomically); see the module docstring.

    `deflicker`: a name of `colorization.video.deflicker.FILTERS` (``flow``, ``none``), a filter
    (a `Deflicker` is `reset` first), or None. `start_s`/`end_s` colorize only that section (in
    seconds; the output starts at 0). Raises `DataError` for an unreadable/truncated/empty film and
    `ConfigError` for bad settings, each one line; nothing is left under `target` then.
    """
    check_crf(crf)
    check_int("batch_size", batch_size, 1, MAX_BATCH)
    temporal = make_deflicker(deflicker) if isinstance(deflicker, str) else deflicker
    if isinstance(temporal, Deflicker):
        temporal.reset()
    started = time.perf_counter()
    with open_film(source, start_s, end_s) as film:
        total = film.info.frame_count if start_s is None and end_s is None else None

        def report(frames: int) -> None:
            if progress is not None:
                progress(Progress(film.info.path, frames, total, time.perf_counter() - started))

        def write(temp: Path) -> None:
            with FilmWriter(temp, film.info, crf, film.carried, film.origin_s) as writer:
                _run(film, writer, _Colorizer(colorize_small, shrink, temporal, film.info), batch_size, report)

        path = atomic_write(target, write)
        return FilmResult(film.info.path, path, film.frames_read, time.perf_counter() - started)


class _Colorizer:
    """One film's frames -> their (Cb, Cr) planes, a batch at a time."""

    def __init__(self, colorize_small: ColorizeSmall, shrink: Shrink, temporal: TemporalFilter | None, info: VideoInfo):
        self.colorize_small, self.shrink, self.temporal, self.info = colorize_small, shrink, temporal, info

    def __call__(self, frames: Sequence[Frame], subsample: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        """Frames -> their (Cb, Cr) uint8 planes, in order."""
        with torch.inference_mode():
            small = torch.stack([self.shrink(luma_to_l(frame.y, self.info.ycbcr)) for frame in frames])
            ab = self.colorize_small(small)
            if tuple(ab.shape) != (len(frames), 2, *small.shape[-2:]):
                raise ConfigError(
                    f"colorize_small returned shape {tuple(ab.shape)} for L of shape {tuple(small.shape)}; "
                    f"expected (B, 2, h, w) ab of the same B, h, w"
                )
            ab = ab.float().cpu()
            return [
                self._chroma(frame, l_small, ab_small, subsample)
                for frame, l_small, ab_small in zip(frames, small, ab, strict=True)
            ]

    def _chroma(
        self, frame: Frame, l_small: Tensor, ab_small: Tensor, subsample: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.temporal is not None:
            ab_small = self.temporal(l_small, ab_small)
        l = luma_to_l(frame.y, self.info.ycbcr)  # recomputed, not kept: a batch holds only uint8 planes
        ab = F.interpolate(ab_small[None], size=l.shape[-2:], mode="bilinear", align_corners=False)
        rgb = lab_to_rgb_keep_l(torch.cat([l[None], ab], dim=1))[0]
        return rgb_to_cbcr(rgb, self.info.ycbcr, subsample)


def _run(
    film: FilmReader, writer: FilmWriter, colorizer: _Colorizer, batch_size: int, report: Callable[[int], None]
) -> None:
    batch: list[Frame] = []
    done = 0

    def flush() -> None:
        nonlocal done
        for frame, (cb, cr) in zip(batch, colorizer(batch, writer.chroma_subsampled), strict=True):
            writer.write(frame, cb, cr)
        done += len(batch)
        batch.clear()
        report(done)

    for frame in film.frames(on_packet=writer.carry):
        batch.append(frame)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()


@dataclass
class BatchSummary:
    """What `colorize_videos` did; `failed` holds (path, one-line reason) pairs."""

    done: list[FilmResult] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def colorize_videos(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    colorize_small: ColorizeSmall,
    shrink: Shrink,
    deflicker: str | TemporalFilter | None = "flow",
    overwrite: bool = False,
    **settings: Any,
) -> BatchSummary:
    """Colorize several films into ``out_dir/<name>.mp4``; a film that fails is reported and the rest go on.

    Existing outputs are skipped unless `overwrite` (a finished output is always complete: writes
    are atomic). Two sources with the same name would write one output: refused before starting.
    `settings` go to `colorize_video` (crf, start_s, end_s, batch_size, progress).
    """
    targets = [output_path(source, out_dir) for source in sources]
    clashes = sorted({str(t) for t in targets if targets.count(t) > 1})
    if clashes:
        raise ConfigError(f"several inputs would be written to {', '.join(clashes)}; give the films distinct names")
    summary = BatchSummary()
    for source, target in zip(map(Path, sources), targets, strict=True):
        if target.exists() and not overwrite:
            summary.skipped.append(source)
            continue
        try:
            summary.done.append(colorize_video(source, target, colorize_small, shrink, deflicker, **settings))
        except DataError as error:  # this film's fault; a ConfigError is every film's and stops the batch
            log.error("failed: %s", error)
            summary.failed.append((source, str(error)))
    return summary


class TqdmProgress:
    """A `progress` callback drawing one tqdm bar per film (on stderr): frames, frames/s and the ETA.

    A new film (another source, or the count starting again) starts a new bar; `close` ends the last.
    """

    def __init__(self) -> None:
        self._bar: Any = None
        self._source: Path | None = None

    def __call__(self, progress: Progress) -> None:
        from tqdm import tqdm  # a dependency of lightning; imported only when a bar is drawn

        if self._bar is None or progress.source != self._source or progress.frames < self._bar.n:
            self.close()
            self._source = progress.source
            self._bar = tqdm(total=progress.total, unit="frame", desc=progress.source.name, dynamic_ncols=True)
        self._bar.update(progress.frames - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
