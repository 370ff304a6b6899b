"""Short films on the page: uploaded clips kept on disk, copies a browser plays, and colorizations in the background.

A clip (at most ``--max-film-seconds``, 30 by default, and ``--max-megapixels`` per frame) is written to
a temporary folder of the server and probed (`colorization.video.io.probe`: a file that is not a film,
or a damaged one, is one message). The page plays it beside its colorized version:

- the original as a copy every browser plays (`playable_copy`: H.264 4:2:0 at an even size, the sound
  carried as ``colorize`` carries it), since an upload may be any container or codec FFmpeg reads;
- the colorized film exactly as ``colorize`` writes it (`colorization.colorize.video.colorize_video`),
  and for an odd-sized film, whose output is 4:4:4 that browsers do not play, its playable copy too.

Colorizing takes seconds to minutes, so it runs in a thread (`FilmJob`) that the page polls for its
progress; one model runs at a time (the demo's model lock), and a new colorization of a clip stops
the one before it. Only the last `FILMS_KEPT` clips stay on disk; the folder goes when the server stops.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from colorization.colorize.video import colorize_video
from colorization.demo import DEFAULT_MAX_FILM_SECONDS
from colorization.errors import ConfigError, DataError
from colorization.files.atomic import atomic_write
from colorization.inference.base import Colorizer
from colorization.inference.films import Progress
from colorization.video import FILTERS, VIDEO_SUFFIXES
from colorization.video.io import FilmWriter, VideoInfo, open_film, probe
from colorization.video.ycbcr import rgb_to_cbcr

log = logging.getLogger(__name__)

FILMS_KEPT = 2
"""How many uploaded clips stay on the server's disk; older ones must be uploaded again."""
PREVIEW_CRF = 23
"""x264's default quality: the page's copies are for watching, the colorized film keeps ``colorize``'s 18."""


class Cancelled(Exception):  # noqa: N818 (not an error: a newer colorization of the clip replaced this one)
    """Raised in a colorization's progress callback to stop it."""


def playable_copy(source: Path, target: Path) -> Path:
    """A copy of the film `source` that browsers play, written atomically to `target`.

    H.264 4:2:0 (an odd last row or column is dropped: 4:2:0 needs even sizes), the luma as stored,
    the chroma converted from the film's own colours (`rgb_of`, `rgb_to_cbcr`), the frame times,
    rotation and sound as ``colorize`` keeps them (`FilmWriter`).
    """
    with open_film(source) as film:
        info = film.info
        even = dataclasses.replace(info, width=info.width // 2 * 2, height=info.height // 2 * 2)

        def write(temp: Path) -> None:
            with FilmWriter(temp, even, PREVIEW_CRF, film.carried) as writer:
                for frame in film.frames(on_packet=writer.carry, rgb=True):
                    rgb = torch.from_numpy(frame.rgb[: even.height, : even.width]).permute(2, 0, 1).float() / 255.0
                    cropped = dataclasses.replace(frame, y=frame.y[: even.height, : even.width])
                    writer.write(cropped, *rgb_to_cbcr(rgb, info.ycbcr, subsample=True))

        return atomic_write(target, write)


def plays_in_browsers(info: VideoInfo) -> bool:
    """Whether a film ``colorize`` wrote plays in browsers as it is: H.264 4:2:0, which needs an even size."""
    return info.width % 2 == 0 and info.height % 2 == 0


@dataclass
class FilmJob:
    """One colorization of an uploaded clip, run in its own thread; the page polls `describe`."""

    key: str
    output: Path
    """The colorized film as ``colorize`` writes it."""
    playable: Path
    """What the page plays: `output` itself, or its playable copy."""
    frames: int = 0
    total: int | None = None
    frames_per_s: float = 0.0
    eta_s: float | None = None
    done: bool = False
    error: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def report(self, progress: Progress) -> None:
        """`colorize_video`'s progress callback: record it, or stop if a newer colorization replaced this one."""
        if self.cancelled.is_set():
            raise Cancelled
        self.frames, self.total = progress.frames, progress.total
        self.frames_per_s, self.eta_s = progress.frames_per_s, progress.eta_s

    def describe(self) -> dict:
        return {
            "job": self.key,
            "frames": self.frames,
            "total": self.total,
            "frames_per_s": self.frames_per_s,
            "eta_s": self.eta_s,
            "done": self.done,
            "error": self.error,
        }


@dataclass
class StoredFilm:
    """An uploaded clip: its folder on the server, what `probe` found, its jobs."""

    key: str
    name: str
    folder: Path
    info: VideoInfo
    jobs: dict[str, FilmJob] = field(default_factory=dict)

    @property
    def source(self) -> Path:
        return self.folder / ("upload" + Path(self.name).suffix.lower())

    @property
    def original(self) -> Path:
        """The playable copy of the upload (made when the clip is stored)."""
        return self.folder / "original.mp4"

    def describe(self) -> dict:
        info = self.info
        return {
            "id": self.key,
            "name": self.name,
            "width": info.width,
            "height": info.height,
            "seconds": info.duration_s,
            "frames": info.frame_count,
        }


class FilmStore:
    """The last `kept` clips by id, in a temporary folder; older ones are deleted first (their files too)."""

    def __init__(self, max_seconds: float = DEFAULT_MAX_FILM_SECONDS, kept: int = FILMS_KEPT) -> None:
        if not max_seconds > 0:
            raise ConfigError(f"--max-film-seconds={max_seconds}: expected a number > 0")
        self.max_seconds, self.kept = float(max_seconds), kept
        self._root: Path | None = None
        self._films: OrderedDict[str, StoredFilm] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes, name: str, max_megapixels: float) -> StoredFilm:
        """Store an uploaded clip and make its playable copy; `DataError` naming `name` for anything else."""
        if Path(name).suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(f"{name}: not a film; expected one of {', '.join(VIDEO_SUFFIXES)}")
        if not data:
            raise DataError(f"{name}: the file is empty")
        key = uuid.uuid4().hex
        folder = self.root / key
        folder.mkdir()
        try:
            stored = self._check(folder, key, name, data, max_megapixels)
            playable_copy(stored.source, stored.original)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            self._films[key] = stored
            while len(self._films) > self.kept:
                _, old = self._films.popitem(last=False)
                for job in old.jobs.values():
                    job.cancelled.set()
                shutil.rmtree(old.folder, ignore_errors=True)
        return stored

    @property
    def root(self) -> Path:
        """The server's folder of clips, made on the first upload."""
        with self._lock:
            if self._root is None:
                self._root = Path(tempfile.mkdtemp(prefix="colorize-demo-films-"))
            return self._root

    def _check(self, folder: Path, key: str, name: str, data: bytes, max_megapixels: float) -> StoredFilm:
        source = folder / ("upload" + Path(name).suffix.lower())
        source.write_bytes(data)
        try:
            info = probe(source)
        except DataError as error:  # it names the server's file: name the uploaded one
            raise DataError(str(error).replace(str(source), name)) from None
        megapixels = info.width * info.height / 1e6
        if megapixels > max_megapixels:
            raise DataError(
                f"{name}: {info.width}x{info.height} frames are {megapixels:.1f} megapixels, more than the "
                f"{max_megapixels:g} this server takes (--max-megapixels)"
            )
        if info.duration_s is not None and info.duration_s > self.max_seconds:
            raise DataError(
                f"{name}: {info.duration_s:.1f} s is longer than the {self.max_seconds:g} s this page takes "
                "(--max-film-seconds); colorize whole films with the colorize command"
            )
        return StoredFilm(key, name, folder, info)

    def get(self, key: str) -> StoredFilm:
        with self._lock:
            stored = self._films.get(key)
            if stored is None:
                raise DataError(f"film {key!r} is no longer on the server; upload it again")
            self._films.move_to_end(key)
            return stored

    def colorize(
        self,
        stored: StoredFilm,
        model: Callable[[], Colorizer],
        deflicker: str,
        device: torch.device,
        lock: AbstractContextManager,
    ) -> FilmJob:
        """Start colorizing `stored` in a thread (the clip's earlier colorizations are stopped); returns its job.

        `model` gives the colorizer once `lock` (the demo's model lock) is held.
        """
        if deflicker not in FILTERS:
            raise ConfigError(f"deflicker={deflicker!r} is unknown; expected one of {list(FILTERS)}")
        key = uuid.uuid4().hex
        output = stored.folder / f"colorized-{key}.mp4"
        playable = output if plays_in_browsers(stored.info) else stored.folder / f"playable-{key}.mp4"
        job = FilmJob(key, output, playable)
        with self._lock:
            for earlier in stored.jobs.values():
                earlier.cancelled.set()
            stored.jobs[key] = job

        def run() -> None:
            try:
                with lock:
                    colorize_video(
                        stored.source,
                        model(),
                        output,
                        device=device,
                        deflicker=deflicker,
                        # a clip whose header does not say how long it is is cut at the limit
                        end_s=self.max_seconds if stored.info.duration_s is None else None,
                        progress=job.report,
                    )
                if playable != output:
                    playable_copy(output, playable)
            except Cancelled:
                job.error = "stopped: a newer colorization of this clip replaced it"
            except (DataError, ConfigError, OSError) as error:
                job.error = str(error).replace(str(stored.source), stored.name)
            except Exception as error:  # a bug: logged with its traceback, and the page says so
                log.exception("colorizing %s failed", stored.name)
                job.error = f"internal error ({type(error).__name__}: {error})"
            finally:
                job.done = True

        threading.Thread(target=run, name=f"film-job-{key[:8]}", daemon=True).start()
        return job

    def close(self) -> None:
        """Stop every colorization and delete the folder."""
        with self._lock:
            for stored in self._films.values():
                for job in stored.jobs.values():
                    job.cancelled.set()
            self._films.clear()
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
