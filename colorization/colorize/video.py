"""Films in ``colorize``: ``colorize film.mp4 --model eccv16`` writes ``colorized/film.mp4``.

A film goes through `colorization.inference.films.colorize_film`, the pipeline ``evaluate.py
data=video`` scores too: its frames are decoded, colorized at the model's working size, steadied by
the temporal filter (``--deflicker``), and encoded as H.264 with the film's own luma, frame times,
rotation, sound and subtitles. `colorize_paths` (`colorization.colorize.photos`) hands the films it
finds to `colorize_films`; `colorize_video` colorizes one film from Python. Every film ends as done,
skipped (its output exists) or failed (one line naming it and why) in the run's `Tally`, like photos.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from colorization.colorize import DEFAULT_OUT
from colorization.colorize.model import load_model, resolve, temperature_set
from colorization.errors import ConfigError, DataError
from colorization.inference.base import Colorizer
from colorization.inference.films import DEFAULT_BATCH, FilmResult, Progress, colorize_film
from colorization.video import DEFAULT_CRF
from colorization.video.deflicker import make_deflicker
from colorization.video.io import OUTPUT_SUFFIX, check_crf, seconds


@dataclass(frozen=True)
class FilmJob:
    """One film: where it is read from and where its colorized MP4 goes."""

    source: Path
    target: Path


@dataclass(frozen=True)
class FilmSettings:
    """What ``colorize`` does to every film (checked once, before any file is read: `check`)."""

    deflicker: str = "flow"
    crf: int = DEFAULT_CRF
    start_s: float | None = None
    end_s: float | None = None

    def check(self) -> FilmSettings:
        """Self, or a `ConfigError` naming the option that is out of range."""
        make_deflicker(self.deflicker)  # an unknown name is refused here
        check_crf(self.crf)
        start_s, end_s = seconds(self.start_s, "--start"), seconds(self.end_s, "--end")
        if end_s is not None and end_s <= (start_s or 0.0):
            raise ConfigError(f"--end={end_s} is not after --start={start_s or 0}; expected start < end (seconds)")
        return self


def plan_films(films: Sequence[tuple[Path, Path]], out_dir: Path, inputs: set[Path]) -> list[FilmJob]:
    """A `FilmJob` per (film, path relative to its output root): ``out_dir/<relative>.mp4``.

    Refuses an output that would overwrite one of `inputs` (resolved paths), and two films that would
    write the same output (``a.mov`` and ``a.mp4`` of one folder).
    """
    jobs, claimed = [], {}
    for source, relative in films:
        target = (out_dir / relative).with_suffix(OUTPUT_SUFFIX)
        if target.resolve() in inputs:
            raise ConfigError(f"{target}: the output would overwrite an input film; choose another --out")
        if target in claimed:
            raise ConfigError(f"{claimed[target]} and {source} would both be written to {target}; rename one")
        claimed[target] = source
        jobs.append(FilmJob(source, target))
    return jobs


class TqdmProgress:
    """A `progress` callback drawing one tqdm bar per film (on stderr): frames, frames/s and the time left.

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
            self._bar = tqdm(
                total=progress.total, unit="frame", desc=progress.source.name, file=sys.stderr, dynamic_ncols=True
            )
        self._bar.update(progress.frames - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def colorize_films(
    jobs: Sequence[FilmJob],
    model: Colorizer,
    tally: Any,
    *,
    settings: FilmSettings,
    size: int | None,
    device: torch.device,
    precision: str,
    batch_size: int,
    overwrite: bool,
    progress: bool,
) -> None:
    """Colorize `jobs` in order, counting each in `tally` (`colorization.colorize.photos.Tally`) as done,
    skipped or failed.

    A film that cannot be read or written fails with one line on stderr and the run goes on; a
    `ConfigError` (every film's problem) stops it.
    """
    bar = TqdmProgress() if progress else None
    for job in jobs:
        if job.target.exists() and not overwrite:
            tally.skipped += 1
            continue
        reason = None
        try:
            result = colorize_film(
                job.source,
                job.target,
                model,
                size=size,
                device=device,
                precision=precision,
                deflicker=settings.deflicker,
                crf=settings.crf,
                start_s=settings.start_s,
                end_s=settings.end_s,
                batch_size=batch_size,
                progress=bar,
            )
        except DataError as error:
            reason = str(error)
        except OSError as error:
            reason = f"{job.target}: cannot write ({error.strerror or error})"
        finally:
            if bar is not None:
                bar.close()  # before the next line, so a failure is not printed into the bar
        if reason is not None:
            tally.failed.append((str(job.source), reason))
            print(f"failed: {reason}", file=sys.stderr)
            continue
        tally.done += 1
        tally.films += 1
        tally.frames += result.frames
        tally.film_seconds += result.seconds


def colorize_video(
    source: str | Path,
    model: Colorizer | str | Path,
    target: str | Path | None = None,
    *,
    size: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_size: int = DEFAULT_BATCH,
    temperature: float | None = None,
    deflicker: str = "flow",
    crf: int = DEFAULT_CRF,
    start_s: float | None = None,
    end_s: float | None = None,
    offline: bool = False,
    progress: bool | Callable[[Progress], None] = False,
) -> FilmResult:
    """Colorize one film into the MP4 `target` (default ``colorized/<name>.mp4``), replacing it if it exists.

    `model`: a loaded colorizer or anything `load_model` takes. The options are the command's
    (``--deflicker``, ``--crf``, ``--start``/``--end`` in seconds, ...). `progress`: True draws a
    progress bar; a callable gets a `Progress` after every batch of frames written. Returns what was
    written: `FilmResult` (source, target, frames, seconds). Raises `DataError` for a film that
    cannot be read and `ConfigError` for bad settings, in one line each; nothing is written then.
    """
    settings = FilmSettings(deflicker, crf, start_s, end_s).check()
    target = Path(target) if target is not None else Path(DEFAULT_OUT) / (Path(source).stem + OUTPUT_SUFFIX)
    model = load_model(model, offline) if isinstance(model, (str, Path)) else model
    bar = progress if callable(progress) else TqdmProgress() if progress else None
    try:
        with temperature_set(model, temperature):
            return colorize_film(
                source,
                target,
                model,
                size=size,
                device=resolve(device),
                precision=precision,
                deflicker=settings.deflicker,
                crf=settings.crf,
                start_s=settings.start_s,
                end_s=settings.end_s,
                batch_size=batch_size,
                progress=bar,
            )
    finally:
        if isinstance(bar, TqdmProgress):
            bar.close()
