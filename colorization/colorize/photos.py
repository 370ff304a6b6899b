"""The photo pipeline behind ``colorize``: files, folders and globs in, full-resolution colour photos out.

See `colorization.colorize` for the contract. Every photo ends as done, skipped or failed
(`Tally`); outputs are written atomically (`colorization.files.photos.save_image_atomic`). Films
found among the inputs go to `colorization.colorize.video`, which counts them in the same tally.
"""

from __future__ import annotations

import fnmatch
import glob
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from colorization.color.hints import Hints, hint_points, read_hints_file
from colorization.colorize import DEFAULT_OUT, FAILED_EXIT_CODE, FORMATS
from colorization.colorize.model import Plan, Runner, load_model, resolve, temperature_set
from colorization.errors import ColorizationError, ConfigError, DataError, check_choice, check_int
from colorization.files.atomic import check_writable, remove_partial_files
from colorization.files.listing import list_folder
from colorization.files.photos import (
    IMAGE_SUFFIXES,
    Photo,
    lab_to_image,
    output_format,
    photo_from_image,
    read_photo,
    save_image_atomic,
    side_by_side,
)
from colorization.inference.base import Colorizer, attach_ab, takes_hints
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


def finish(photo: Photo, ab: Tensor, device: torch.device) -> Image.Image:
    """The output image: ab (2, h, w) upsampled onto the photo's full-resolution L, alpha re-attached."""
    lab = attach_ab(photo.l[None].to(device), ab[None].to(device))
    return lab_to_image(lab, photo.alpha)


def gray_image(photo: Photo, device: torch.device) -> Image.Image:
    """The photo as the model saw it: its L with a = b = 0."""
    return lab_to_image(attach_ab(photo.l[None].to(device), torch.zeros(1, 2, 1, 1, device=device)))


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
    """Decodes the photos of `jobs[i]` for i in `indices` and shrinks their L (runs in DataLoader workers)."""

    def __init__(self, jobs: Sequence[Job], indices: Sequence[int], plan: Plan) -> None:
        self.jobs, self.indices, self.plan = list(jobs), list(indices), plan

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Prepared:
        index = self.indices[position]
        source = self.jobs[index].source
        try:
            photo = read_photo(source)
            return Prepared(index, photo, self.plan.shrink(photo.l))
        except ColorizationError as error:
            return Prepared(index, error=str(error))
        except Exception as error:  # a decoder bug on one odd file must not end the run
            return Prepared(index, error=f"{source}: cannot read the image ({type(error).__name__}: {error})")


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


class Writer:
    """Threads that build and write outputs off the main thread, so encoding overlaps the network.

    Pillow's encoders and torch's kernels release the GIL, so several threads write in parallel.
    Put ``(Prepared, ab)`` on `queue`; `close` waits until everything is written.
    """

    def __init__(
        self, jobs: Sequence[Job], tally: Tally, device: torch.device, quality: int, bar: Any, threads: int = 1
    ) -> None:
        self.jobs, self.tally, self.device, self.quality, self.bar = jobs, tally, device, quality, bar
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUED_PER_THREAD * threads)
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self.run, name=f"colorize-writer-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            prepared, ab = item
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
) -> Tally:
    """Colorize photos and films (files, folders and globs) into `out_dir`, mirroring names and sub-folders.

    Photos become photos; films become ``<name>.mp4`` (`colorization.colorize.video`), which
    `deflicker`, `crf` and the section `start_s`..`end_s` (seconds) apply to. Usage errors (bad
    settings, a model that cannot be loaded, outputs that would overwrite inputs) raise
    `ColorizationError` before any file is read; a photo or film that cannot be read is reported in
    the tally and the run goes on. Existing outputs are skipped unless `overwrite`.
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
    model = load_model(model, offline) if isinstance(model, (str, Path)) else model
    plan = Plan.of(model, size)
    runner = Runner(model, resolve(device), precision)
    remove_partial_files(out_dir, recursive=True)  # outputs mirror sub-folders; a live run's files are kept
    todo = [i for i, job in enumerate(jobs) if overwrite or not job.done()]
    tally = Tally(skipped=len(jobs) - len(todo))
    with temperature_set(model, temperature):
        with _progress(len(jobs), progress and bool(jobs)) as bar:
            bar.update(tally.skipped)
            writer = Writer(jobs, tally, runner.device, quality, bar, threads=max(1, workers))
            try:
                if hints is not None and todo:
                    _colorize_one(jobs[todo[0]], todo[0], plan, runner, writer, hints, model)
                elif todo:
                    _colorize_all(PhotoDataset(jobs, todo, plan), runner, writer, batch_size, workers)
            finally:
                writer.close()
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


def _colorize_one(
    job: Job, index: int, plan: Plan, runner: Runner, writer: Writer, hints: Any, model: Colorizer
) -> None:
    """One photo with hints: hints are checked against the decoded photo's size before it runs."""
    try:
        photo = read_photo(job.source)
    except DataError as error:
        writer.fail(job.source, str(error))
        return
    point_hints = _hints(model, hints, photo)
    writer.queue.put((Prepared(index, photo), runner(plan.shrink(photo.l)[None], point_hints)[0].cpu()))


def _colorize_all(dataset: PhotoDataset, runner: Runner, writer: Writer, batch_size: int, workers: int) -> None:
    """Decode in workers, batch photos of one working size, run the network, hand results to the writer."""
    loader = DataLoader(
        dataset, batch_size=None, num_workers=workers, collate_fn=_keep, prefetch_factor=None if workers == 0 else 4
    )
    buckets: dict[tuple[int, int], list[Prepared]] = {}

    def flush(key: tuple[int, int]) -> None:
        items = buckets.pop(key)
        ab = runner(torch.stack([item.small for item in items])).cpu()
        for item, item_ab in zip(items, ab, strict=True):
            writer.queue.put((item, item_ab))

    for item in loader:
        if item.error is not None:
            writer.fail(dataset.jobs[item.index].source, item.error)
            continue
        key = tuple(item.small.shape[-2:])
        buckets.setdefault(key, []).append(item)
        if len(buckets[key]) == batch_size:
            flush(key)
    for key in list(buckets):
        flush(key)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="colorize", disable=not enabled, file=sys.stderr, dynamic_ncols=True)
