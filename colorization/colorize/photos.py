"""The photo pipeline behind ``colorize``: files, folders and globs in, full-resolution colour photos out.

See `colorization.colorize` for the contract. Every photo ends as done, skipped or failed
(`Tally`); outputs are written atomically (`colorization.files.photos.save_image_atomic`). Films
found among the inputs go to `colorization.colorize.video`, which counts them in the same tally.
"""

from __future__ import annotations

import fnmatch
import glob
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from colorization.color.hints import Hints, hint_points, read_hints_file
from colorization.colorize import DEFAULT_MAX_MEGAPIXELS, DEFAULT_OUT, FAILED_EXIT_CODE, FORMATS
from colorization.colorize.model import Plan, Runner, load_model, resolve, temperature_set
from colorization.errors import ColorizationError, ConfigError, DataError, check_choice, check_int
from colorization.files.atomic import check_writable, remove_partial_files
from colorization.files.listing import list_folder
from colorization.files.photos import (
    IMAGE_SUFFIXES,
    STRIP_PIXELS,
    Photo,
    check_megapixels,
    lab_to_rgb8,
    open_image,
    output_format,
    photo_from_image,
    read_photo,
    save_image_atomic,
    side_by_side,
)
from colorization.inference.base import Colorizer, takes_hints
from colorization.video import DEFAULT_CRF, VIDEO_SUFFIXES

COMPARE_SUFFIX = ".compare.png"
GLOB_CHARACTERS = frozenset("*?[")
QUEUED_PER_THREAD = 8
"""Colorized photos waiting per writer thread before the network waits for them (bounds memory)."""
SHOW_FAILED = 5
"""How many failed paths the tally line names."""


# ---- what to do --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One photo: where it is read from and where its outputs go."""

    source: Path
    target: Path
    format: str
    compare: Path | None = None

    def done(self) -> bool:
        return self.target.exists() and (self.compare is None or self.compare.exists())


def find_photos(
    inputs: Sequence[str | Path],
    recursive: bool = False,
    exclude: Path | None = None,
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
) -> list[tuple[Path, Path]]:
    """(path, path relative to its output root) for files, folders and globs, in a stable order.

    Files whose suffix is not one of `suffixes` (photos by default; ``colorize`` adds films) are
    ignored inside folders (and refused when named directly); `exclude` (the output folder) is
    never scanned, nor accepted as an input folder.
    """
    exclude = exclude.resolve() if exclude is not None else None
    found: dict[Path, Path] = {}
    for item in inputs:
        text = str(item)
        is_glob = bool(GLOB_CHARACTERS & set(text))
        matches = _glob(text, recursive, suffixes) if is_glob else [text]
        if not matches:
            raise DataError(f"{text}: no file matches")
        for match in map(Path, matches):
            if match.is_dir():
                if exclude is not None and match.resolve() == exclude:
                    raise ConfigError(f"--out {match} is an input folder; choose an output folder of its own")
                for relative in _folder_files(match, recursive, suffixes):
                    resolved = (match / relative).resolve()
                    if exclude is None or not resolved.is_relative_to(exclude):
                        found.setdefault(resolved, relative)
            elif match.is_file():
                if match.suffix.lower() not in suffixes:
                    if not is_glob:  # named directly: refused; what a glob matches besides photos is ignored
                        raise DataError(f"{match}: not a file this reads; expected one of {sorted(suffixes)}")
                    continue
                found.setdefault(match.resolve(), Path(match.name))
            else:
                raise DataError(f"{match}: no such file or folder")
    return [(source, relative) for source, relative in found.items()]


def _folder_files(folder: Path, recursive: bool, suffixes: Sequence[str]) -> list[Path]:
    """The files of `folder` (and with `recursive` of its sub-folders) ending in one of `suffixes`, relative to it.

    The sub-folders are walked by `list_folder`: each real folder and file once, whatever links lead
    to it, so a link back up the tree (``up -> ..``) is not followed round; the links skipped are
    counted in one line on stderr.
    """
    if not recursive:
        return [
            path.relative_to(folder)
            for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix.lower() in suffixes
        ]
    return [Path(relative) for relative in _walk(folder, suffixes)]


def _walk(folder: Path, suffixes: Sequence[str]) -> list[str]:
    """`list_folder(folder, suffixes)`'s files ('/'-separated, relative), saying on stderr how many links it skipped."""
    listing = list_folder(folder, suffixes)
    if listing.skipped_links:
        print(
            f"{folder}: skipped {listing.skipped_links} link(s) to a folder or file listed already, or to a folder "
            "holding this one (a loop)",
            file=sys.stderr,
        )
    return list(listing.files)


def _glob(pattern: str, recursive: bool, suffixes: Sequence[str]) -> list[str]:
    """The paths a glob matches, sorted. With `recursive`, a ``**`` part matches any depth of folders; such a
    pattern is matched against `_walk`'s files, since glob's own ``**`` follows links round a loop (``up -> ..``)
    without end."""
    parts = Path(pattern).parts
    if not (recursive and "**" in parts):
        return sorted(glob.glob(pattern))
    first_wild = next(i for i, part in enumerate(parts) if GLOB_CHARACTERS & set(part))
    root = Path(*parts[:first_wild])
    if not root.is_dir():
        return []
    if parts[first_wild:] == ("**",):  # the folder and everything below it: the folder, whose tree is mirrored
        return [str(root)]
    return [str(root / name) for name in _walk(root, suffixes) if _matches(Path(name).parts, parts[first_wild:])]


def _matches(parts: Sequence[str], pattern: Sequence[str]) -> bool:
    """Whether path `parts` match glob `pattern` parts, where a ``**`` part stands for any number of folders."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


def plan_jobs(
    photos: Sequence[tuple[Path, Path]], out_dir: Path, format: str = "png", side_by_side: bool = False
) -> list[Job]:
    """A `Job` per photo, refusing an `out_dir` that cannot be written (a file, a read-only folder) and
    outputs that would overwrite an input or each other: usage errors, found before any photo is read."""
    check_writable(out_dir, "--out")
    inputs = {source for source, _ in photos}
    jobs, claimed = [], {}
    for source, relative in photos:
        pillow_format, target, compare = _outputs(source, relative, out_dir, format, side_by_side)
        for path in (target, compare):
            if path is None:
                continue
            if path.resolve() in inputs:
                raise ConfigError(f"{path}: the output would overwrite an input photo; choose another --out")
            if path in claimed:
                raise ConfigError(_collision(claimed[path], (source, relative), path, out_dir, format, side_by_side))
            claimed[path] = (source, relative)
        jobs.append(Job(source, target, pillow_format, compare))
    return jobs


def _outputs(
    source: Path, relative: Path, out_dir: Path, format: str, side_by_side: bool
) -> tuple[str, Path, Path | None]:
    """The Pillow format, output path and side-by-side path (or None) of the photo `source` found at `relative`."""
    pillow_format, suffix = output_format(format, source.suffix)
    target = (out_dir / relative).with_suffix(suffix)
    return pillow_format, target, target.with_name(target.stem + COMPARE_SUFFIX) if side_by_side else None


def _collision(
    first: tuple[Path, Path], second: tuple[Path, Path], path: Path, out_dir: Path, format: str, side_by_side: bool
) -> str:
    """The error of two photos (source, relative) whose outputs would share `path`; ``--format same`` is
    suggested only where it would part them (not for two photos of one format, nor for side-by-side sheets)."""
    outputs = [set(_outputs(*photo, out_dir, "same", side_by_side)[1:]) - {None} for photo in (first, second)]
    fix = "use --format same or rename one" if format != "same" and not outputs[0] & outputs[1] else "rename one"
    return f"{first[0]} and {second[0]} would both be written to {path}; {fix}"


# ---- one image --------------------------------------------------------------------------------------


def finish(photo: Photo, ab: Tensor, device: torch.device, strip_pixels: int = STRIP_PIXELS) -> Image.Image:
    """The output image: ab (2, h, w) upsampled bilinearly onto the photo's full-resolution L, alpha re-attached.

    The full-resolution work (upsampling, Lab -> sRGB keeping L, rounding to 8 bits) runs on `device`
    in strips of rows of about `strip_pixels`: each strip's pixels are those `attach_ab` and
    `lab_to_image` give for the whole photo, and memory beyond the photo's L and output bytes stays a
    strip's. Bilinear upsampling is separable, so ab is widened to the photo's width once and each
    strip interpolates between two of its rows, as ``F.interpolate`` does (`_upsampled_rows`).
    """
    height, width = photo.size
    small = ab.to(device, torch.float32)[None]
    wide = F.interpolate(small, size=(small.shape[-2], width), mode="bilinear", align_corners=False)[0]  # (2, h, W)
    channels = 3 if photo.alpha is None else 4
    pixels = np.empty((height, width, channels), dtype=np.uint8)
    if photo.alpha is not None:
        pixels[..., 3] = photo.alpha
    rows = max(1, strip_pixels // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        lab = torch.cat([photo.l[:, top:bottom].to(device), _upsampled_rows(wide, top, bottom, height)])
        pixels[top:bottom, :, :3] = lab_to_rgb8(lab[None])
    return Image.fromarray(pixels, "RGB" if photo.alpha is None else "RGBA")


def _upsampled_rows(wide: Tensor, top: int, bottom: int, height: int) -> Tensor:
    """Rows top..bottom-1 of (2, h, W) ab upsampled bilinearly to `height` rows: (2, bottom - top, W).

    The source coordinate of each row and its two weights are ``F.interpolate``'s (align_corners=False).
    """
    rows = wide.shape[-2]
    scale = float(np.float32(rows) / np.float32(height))  # in float32, as the interpolation kernel divides
    source = ((torch.arange(top, bottom, device=wide.device, dtype=torch.float32) + 0.5) * scale - 0.5).clamp(min=0)
    above = source.long()
    below = (above + 1).clamp(max=rows - 1)
    weight = (source - above)[:, None]
    return wide[:, above] * (1.0 - weight) + wide[:, below] * weight


def gray_image(photo: Photo, device: torch.device) -> Image.Image:
    """The photo as the model saw it: its L with a = b = 0."""
    return finish(Photo(photo.l), torch.zeros(2, 1, 1), device)


# ---- one image --------------------------------------------------------------------------------------


def colorize_image(
    image: Image.Image,
    model: Colorizer | str,
    hints: Sequence[dict] | str | Path | None = None,
    size: int | None = None,
    temperature: float | None = None,
    device: str = "cpu",
    precision: str = "auto",
) -> Image.Image:
    """A colour version of a Pillow image (any mode), same size, same luminance, alpha kept.

    `model`: a loaded colorizer or anything `load_model` takes. `hints`: records
    ``{"x": px, "y": px, "color": "#rrggbb"}`` or ``{"x", "y", "ab": [a, b]}`` in the image's
    pixels, or the path of a hints file (SIGGRAPH17 only). `size` overrides the working size;
    `temperature` sets the annealed-mean temperature of classification models.
    """
    model = load_model(model) if isinstance(model, (str, Path)) else model
    photo = photo_from_image(image)
    point_hints = _hints(model, hints, photo)
    runner = Runner(model, resolve(device), precision)
    with temperature_set(model, temperature):
        ab = runner(Plan.of(model, size).shrink(photo.l)[None], point_hints)[0]
    return finish(photo, ab, runner.device)


def _hints(model: Colorizer, hints: Sequence[dict] | str | Path | None, photo: Photo) -> Hints | None:
    if hints is None:
        return None
    if not takes_hints(model):
        raise ConfigError(f"--hints: {type(model).__name__} takes no hints; only SIGGRAPH17 does")
    source = str(hints) if isinstance(hints, (str, Path)) else "hints"
    points = read_hints_file(hints) if isinstance(hints, (str, Path)) else hint_points(hints, source)
    return Hints.from_points([points], size=photo.size, source=source)


@dataclass
class Prepared:
    """A photo decoded and shrunk by a worker, or the reason it could not be."""

    index: int
    photo: Photo | None = None
    small: Tensor | None = None
    error: str | None = None


class PhotoDataset(Dataset):
    """Decodes the photos of `jobs[i]` for i in `indices` and shrinks their L (runs in DataLoader workers).

    A photo of more than `max_megapixels` is refused from its header, before any pixel is decoded.
    """

    def __init__(
        self, jobs: Sequence[Job], indices: Sequence[int], plan: Plan, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    ) -> None:
        self.jobs, self.indices, self.plan, self.max_megapixels = list(jobs), list(indices), plan, max_megapixels

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Prepared:
        index = self.indices[position]
        source = self.jobs[index].source
        try:
            photo = read_photo_within(source, self.max_megapixels)
        except ColorizationError as error:
            return Prepared(index, error=str(error))
        except Exception as error:  # a decoder bug or no memory on one odd file must not end the run
            return Prepared(index, error=f"{source}: cannot read the image ({_reason(error)})")
        try:
            return Prepared(index, photo, self.plan.shrink(photo.l))
        except Exception as error:
            return Prepared(index, error=f"{source}: cannot shrink it to the working size ({_reason(error)})")


def read_photo_within(source: Path, max_megapixels: float) -> Photo:
    """`read_photo`, refusing (`DataError`) a photo of more than `max_megapixels` before decoding any pixel."""
    with open_image(source) as image:
        check_megapixels(source, image.size, max_megapixels, "colorize")
    return read_photo(source)


def _reason(error: BaseException) -> str:
    """An unexpected exception as ``Type: message`` on one line."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _keep(item: Prepared) -> Prepared:
    return item


@dataclass
class Tally:
    """What a run did, photos and films alike. `failed` holds (path, reason) pairs."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    films: int = 0
    """The films among `done`."""
    frames: int = 0
    """Their frames."""
    film_seconds: float = 0.0
    """The part of `seconds` spent on films."""

    @property
    def images_per_s(self) -> float:
        """Photos per second of the time spent on photos."""
        photo_seconds = self.seconds - self.film_seconds
        return (self.done - self.films) / photo_seconds if photo_seconds > 0 else 0.0

    @property
    def frames_per_s(self) -> float:
        """Film frames per second of the time spent on films."""
        return self.frames / self.film_seconds if self.film_seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return FAILED_EXIT_CODE if self.failed else 0

    def line(self) -> str:
        """``done N, skipped N, failed N (paths), S s, R images/s``; after films ``F frames at R frames/s`` too
        (instead of the photos' rate when there were only films)."""
        failed = f"failed {len(self.failed)}"
        if self.failed:
            names = [path for path, _ in self.failed[:SHOW_FAILED]]
            failed += f" ({', '.join(names)}{', ...' if len(self.failed) > SHOW_FAILED else ''})"
        rates = [f"{self.seconds:.1f} s"]
        if self.done > self.films or not self.films:
            rates.append(f"{self.images_per_s:.2f} images/s")
        if self.films:
            rates.append(f"{self.frames} frames at {self.frames_per_s:.1f} frames/s")
        rate = ", ".join(rates)
        return f"done {self.done}, skipped {self.skipped}, {failed}, {rate}"


class StoppedError(ColorizationError):
    """A worker of the pipeline died: the run stops (what was written is kept; a rerun skips it)."""

    exit_code = FAILED_EXIT_CODE


class Writer:
    """A pool of threads that build and write outputs off the main thread, so that the network never waits.

    Each photo's full-resolution colour conversion (`finish`, on the runner's device) and encoding run
    in one task; Pillow's encoders and torch's kernels release the GIL, so the tasks run in parallel.
    `put` waits while `QUEUED_PER_THREAD` photos per thread are pending (that bounds memory); `close`
    waits until everything is written. Every photo ends counted: any exception while writing one fails
    that photo alone; a task that dies anyway stops the run (`StoppedError`) instead of losing the photo.
    """

    def __init__(
        self, jobs: Sequence[Job], tally: Tally, device: torch.device, quality: int, bar: Any, threads: int = 1
    ) -> None:
        self.jobs, self.tally, self.device, self.quality, self.bar = jobs, tally, device, quality, bar
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="colorize-writer")
        self.pending: deque[Future] = deque()
        self.limit = QUEUED_PER_THREAD * threads
        self.lock = threading.Lock()

    def put(self, prepared: Prepared, ab: Tensor) -> None:
        """Write the output of `prepared`'s photo colorized with (2, h, w) `ab`, in the pool."""
        while len(self.pending) >= self.limit:
            self._collect(self.pending.popleft())
        self.pending.append(self.pool.submit(self.write, prepared, ab))

    def close(self, finished: bool = True) -> None:
        """Wait for every pending output (`finished`), or only for those already being written (a run that stops)."""
        try:
            while finished and self.pending:
                self._collect(self.pending.popleft())
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _collect(self, future: Future) -> None:
        error = future.exception()
        if error is not None:  # `write` counts every Exception: this is a thread killed by something else
            raise StoppedError(f"a writer thread stopped ({_reason(error)}); the photos written so far are kept")

    def write(self, prepared: Prepared, ab: Tensor) -> None:
        job = self.jobs[prepared.index]
        try:
            photo = prepared.photo
            image = finish(photo, ab, self.device)
            save_image_atomic(image, job.target, job.format, self.quality, photo.exif, photo.icc)
            if job.compare is not None:
                save_image_atomic(side_by_side(gray_image(photo, self.device), image), job.compare, "PNG")
            self.record(done=1)
        except OSError as error:
            self.fail(job.source, f"{job.target}: cannot write ({error.strerror or error})")
        except Exception as error:  # no memory for a big photo, an encoder refusing its metadata: this photo alone
            self.fail(job.source, f"{job.target}: cannot write ({_reason(error)})")

    def record(self, done: int = 0, skipped: int = 0) -> None:
        with self.lock:
            self.tally.done += done
            self.tally.skipped += skipped
            self.bar.update(done + skipped)

    def fail(self, source: Path, reason: str) -> None:
        with self.lock:
            self.tally.failed.append((str(source), reason))
            self.bar.write(f"failed: {reason}", file=sys.stderr)  # now, not only at the end of a long run
            self.bar.update(1)


def colorize_paths(
    paths: Sequence[str | Path],
    model: Colorizer | str,
    out_dir: str | Path = DEFAULT_OUT,
    *,
    size: int | None = None,
    device: str = "auto",
    batch_size: int = 8,
    format: str = "png",
    quality: int = 95,
    side_by_side: bool = False,
    overwrite: bool = False,
    recursive: bool = False,
    temperature: float | None = None,
    hints: Sequence[dict] | str | Path | None = None,
    workers: int = 2,
    precision: str = "auto",
    offline: bool = False,
    progress: bool = False,
    deflicker: str = "flow",
    crf: int = DEFAULT_CRF,
    start_s: float | None = None,
    end_s: float | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> Tally:
    """Colorize photos and films (files, folders and globs) into `out_dir`, mirroring names and sub-folders.

    Photos become photos; films become ``<name>.mp4`` (`colorization.colorize.video`), which
    `deflicker`, `crf` and the section `start_s`..`end_s` (seconds) apply to. Usage errors (bad
    settings, a model that cannot be loaded, outputs that would overwrite inputs) raise
    `ColorizationError` before any file is read; a photo or film that cannot be read is reported in
    the tally and the run goes on, as does a photo of more than `max_megapixels`. Existing outputs are
    skipped unless `overwrite`.
    """
    check_choice("--format", format, FORMATS)
    for key, value, low in (("--batch-size", batch_size, 1), ("--workers", workers, 0), ("--quality", quality, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (key == "--quality" and value > 100):
            raise ConfigError(
                f"{key}={value!r}: expected an integer >= {low}" + (" and <= 100" if key == "--quality" else "")
            )
    start = time.perf_counter()
    out_dir = Path(out_dir)
    found = find_photos(paths, recursive, exclude=out_dir, suffixes=(*IMAGE_SUFFIXES, *VIDEO_SUFFIXES))
    films = [(source, relative) for source, relative in found if source.suffix.lower() in VIDEO_SUFFIXES]
    jobs = plan_jobs([item for item in found if item not in films], out_dir, format, side_by_side)
    if hints is not None and (len(jobs) != 1 or films):
        raise ConfigError(f"--hints apply to one photo, but {len(jobs)} photo(s) and {len(films)} film(s) were given")
    if films:
        from colorization.colorize import video  # PyAV and OpenCV: only when there are films
        from colorization.inference.films import MAX_BATCH

        film_settings = video.FilmSettings(deflicker, crf, start_s, end_s).check()
        check_int("--batch-size", batch_size, 1, MAX_BATCH)  # a film's batches have a ceiling
        film_jobs = video.plan_films(films, out_dir, inputs={source for source, _ in found})
    if isinstance(max_megapixels, bool) or not isinstance(max_megapixels, (int, float)) or not max_megapixels > 0:
        raise ConfigError(f"--max-megapixels={max_megapixels!r}: expected a number > 0")
    model = load_model(model, offline) if isinstance(model, (str, Path)) else model
    plan = Plan.of(model, size)
    _check_working_size(plan, max_megapixels)
    runner = Runner(model, resolve(device), precision)
    remove_partial_files(out_dir, recursive=True)  # outputs mirror sub-folders; a live run's files are kept
    todo = [i for i, job in enumerate(jobs) if overwrite or not job.done()]
    tally = Tally(skipped=len(jobs) - len(todo))
    with temperature_set(model, temperature):
        with _progress(len(jobs), progress and bool(jobs)) as bar:
            bar.update(tally.skipped)
            writer = Writer(jobs, tally, runner.device, quality, bar, threads=_cores())
            finished = False
            try:
                if hints is not None and todo:
                    _colorize_one(jobs[todo[0]], todo[0], plan, runner, writer, hints, model, max_megapixels)
                elif todo:
                    dataset = PhotoDataset(jobs, todo, plan, max_megapixels)
                    _colorize_all(dataset, runner, writer, batch_size, workers)
                finished = True
            finally:
                writer.close(finished)
        if films:
            video.colorize_films(
                film_jobs,
                model,
                tally,
                settings=film_settings,
                size=size,
                device=runner.device,
                precision=precision,
                batch_size=batch_size,
                overwrite=overwrite,
                progress=progress,
            )
    tally.seconds = time.perf_counter() - start
    return tally


def _cores() -> int:
    """The CPU cores this process may run on: the size of the writer pool."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _check_working_size(plan: Plan, max_megapixels: float) -> None:
    """Refuse (`ConfigError`) a fixed working square larger than the photos colorize takes (``--size 100000``)."""
    side = plan.size if plan.native_size is not None and plan.size is not None else plan.native_size
    if side is not None and side * side / 1e6 > max_megapixels:
        largest = math.isqrt(int(max_megapixels * 1e6))
        raise ConfigError(
            f"--size={side}: a {side}x{side} working size is {side * side / 1e6:g} megapixels, more than the "
            f"{max_megapixels:g} colorize takes (--max-megapixels); expected a side <= {largest}"
        )


def _colorize_one(
    job: Job,
    index: int,
    plan: Plan,
    runner: Runner,
    writer: Writer,
    hints: Any,
    model: Colorizer,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
) -> None:
    """One photo with hints: hints are checked against the decoded photo's size before it runs."""
    try:
        photo = read_photo_within(job.source, max_megapixels)
    except DataError as error:
        writer.fail(job.source, str(error))
        return
    point_hints = _hints(model, hints, photo)
    prepared = Prepared(index, photo, plan.shrink(photo.l))
    _run_batch([prepared], runner, writer, point_hints)


def _run_batch(items: list[Prepared], runner: Runner, writer: Writer, hints: Hints | None = None) -> None:
    """The network on photos of one working size, their outputs handed to the writer; a batch that fails
    (no memory, an export refusing the size) fails its photos alone."""
    try:
        ab = runner(torch.stack([item.small for item in items]), hints)
    except ColorizationError:
        raise  # a setting that fits no photo: a usage error
    except Exception as error:
        for item in items:
            source = writer.jobs[item.index].source
            writer.fail(source, f"{source}: cannot colorize ({_reason(error)})")
        return
    for item, item_ab in zip(items, ab, strict=True):
        writer.put(item, item_ab)


def _colorize_all(dataset: PhotoDataset, runner: Runner, writer: Writer, batch_size: int, workers: int) -> None:
    """Decode in workers (`workers` processes, each a few photos ahead), batch photos of one working size, run
    the network, hand results to the writer. A decoding process that dies stops the run (`StoppedError`)."""
    loader = DataLoader(
        dataset, batch_size=None, num_workers=workers, collate_fn=_keep, prefetch_factor=None if workers == 0 else 4
    )
    buckets: dict[tuple[int, int], list[Prepared]] = {}
    try:
        for item in loader:
            if item.error is not None:
                writer.fail(dataset.jobs[item.index].source, item.error)
                continue
            key = tuple(item.small.shape[-2:])
            buckets.setdefault(key, []).append(item)
            if len(buckets[key]) == batch_size:
                _run_batch(buckets.pop(key), runner, writer)
    except RuntimeError as error:
        if "DataLoader worker" not in str(error):
            raise
        stopped = f"a decoding process stopped ({_reason(error)}); the photos written so far are kept"
        raise StoppedError(stopped) from None
    for key in list(buckets):
        _run_batch(buckets.pop(key), runner, writer)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="colorize", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
