"""Colorizing a film as a stream: decode -> shrink L -> batches through the network -> temporal filter ->
chroma onto the film's own luma -> encode.

Three stages run at once, joined by bounded queues, so that decoding, the chroma and encoding overlap
the network instead of waiting for it (on a GPU they would otherwise leave it idle; on a CPU they use
the cores the network leaves):

- a reader thread decodes the frames (`colorization.video.io.FilmReader`) and shrinks each frame's L
  to the working size (`shrink`; L is CIE L* of the gray value of the frame's Y', `luma_to_l`);
- the calling thread stacks `batch_size` frames and runs the network on them (`colorize_small`);
- a writer thread, in frame order, runs the temporal filter on the working-size ab
  (`colorization.video.deflicker`), joins that ab to the frame's full-resolution L (`attach_ab`, as
  photos are), converts it to sRGB keeping L (`lab_to_rgb_keep_l`) and then to the output's Cb, Cr,
  and encodes the frame with the input's own Y' plane (`colorization.video.io.FilmWriter`); it also
  writes the audio and subtitle packets the reader hands on.

Memory holds at most `QUEUED_BATCHES` batches in each queue and the filter's one-frame state,
whatever the film's length. PyAV's codecs and torch's kernels release the GIL, so the threads run in
parallel. The output is written atomically: a killed or failed run leaves nothing under its name.

`stream_film` takes the network as two callables (tests and benchmarks give their own);
`colorize_film` runs a `Colorizer` the way ``colorize`` does (`colorization.inference.running`), and is
what both ``colorize`` and ``evaluate.py data=video`` call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch import Tensor

from colorization.color.spaces import lab_to_rgb_keep_l
from colorization.errors import ConfigError, check_int
from colorization.files.atomic import atomic_write
from colorization.inference.base import Colorizer, attach_ab
from colorization.inference.running import Plan, Runner
from colorization.inference.runtime import resolve_device
from colorization.video import DEFAULT_CRF
from colorization.video.deflicker import Deflicker, TemporalFilter, make_deflicker
from colorization.video.io import FilmReader, FilmWriter, Frame, check_crf, open_film
from colorization.video.ycbcr import YCbCrSpec, luma_to_l, rgb_to_cbcr

DEFAULT_BATCH = 8
MAX_BATCH = 1024
QUEUED_BATCHES = 2
"""Batches each queue holds before the stage feeding it waits: enough to keep every stage busy."""
POLL_S = 0.1
"""How often a stage waiting on a queue checks whether another stage failed."""

ColorizeSmall = Callable[[Tensor], Tensor]
"""(B, 1, h, w) L in [0, 100] -> (B, 2, h, w) ab (any device; read back as float32)."""
Shrink = Callable[[Tensor], Tensor]
"""(1, H, W) L in [0, 100] -> (1, h, w) L at the network's working size."""


@dataclass(frozen=True)
class Progress:
    """Where a film's colorization is: reported after every batch written."""

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


def colorize_film(
    source: str | Path,
    target: str | Path,
    model: Colorizer,
    *,
    size: int | None = None,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    deflicker: str | TemporalFilter | None = "flow",
    crf: int = DEFAULT_CRF,
    start_s: float | None = None,
    end_s: float | None = None,
    max_frames: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[Progress], None] | None = None,
) -> FilmResult:
    """Colorize the film `source` into the MP4 `target` with `model`, as ``colorize`` does.

    The working size is `Plan.of(model, size)`'s and the network runs in `precision` on `device`
    (`Runner`); the rest is `stream_film`'s.
    """
    device = device if isinstance(device, torch.device) else resolve_device(device)
    runner = Runner(model, device, precision)
    return stream_film(
        source,
        target,
        runner,
        Plan.of(model, size).shrink,
        deflicker=deflicker,
        crf=crf,
        start_s=start_s,
        end_s=end_s,
        max_frames=max_frames,
        batch_size=batch_size,
        progress=progress,
    )


def stream_film(
    source: str | Path,
    target: str | Path,
    colorize_small: ColorizeSmall,
    shrink: Shrink,
    *,
    deflicker: str | TemporalFilter | None = "flow",
    crf: int = DEFAULT_CRF,
    start_s: float | None = None,
    end_s: float | None = None,
    max_frames: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[Progress], None] | None = None,
) -> FilmResult:
    """Colorize the film `source` into the MP4 `target` (written atomically); see the module docstring.

    `deflicker`: a name of `colorization.video.FILTERS` (``flow``, ``none``), a filter
    (a `Deflicker` is `reset` first), or None. `start_s`/`end_s` colorize only that section (in
    seconds; the output starts at 0), `max_frames` at most that many frames. `progress` is called
    after every batch written. Raises `DataError` for an unreadable, truncated or empty film and
    `ConfigError` for bad settings, each one line; nothing is left under `target` then.
    """
    check_crf(crf)
    check_int("batch_size", batch_size, 1, MAX_BATCH)
    temporal = make_deflicker(deflicker) if isinstance(deflicker, str) else deflicker
    if isinstance(temporal, Deflicker):
        temporal.reset()
    started = time.perf_counter()
    with open_film(source, start_s, end_s, max_frames) as film:
        total = film.info.frame_count if film.whole else None

        def report(frames: int) -> None:
            if progress is not None:
                progress(Progress(film.info.path, frames, total, time.perf_counter() - started))

        def write(temp: Path) -> None:
            with FilmWriter(temp, film.info, crf, film.carried, film.origin_s) as writer:
                _Pipeline(film, writer, colorize_small, shrink, temporal, batch_size, report).run()

        path = atomic_write(target, write)
        return FilmResult(film.info.path, path, film.frames_read, time.perf_counter() - started)


class _StoppedError(Exception):
    """Raised inside a stage when another stage failed: it stops without a report of its own."""


@dataclass(frozen=True)
class _Batch:
    """Frames on their way to the writer: their frames, working-size L (B, 1, h, w) and predicted ab (B, 2, h, w)."""

    frames: list[Frame]
    small: Tensor
    ab: Tensor


_END = object()
"""Put on a queue after the last item."""


class _Pipeline:
    """One film's three stages (module docstring): `run` returns when the last frame is encoded.

    The first error in any stage stops the others (`_stop`) and is raised by `run`, in the calling
    thread; no stage outlives `run`, so the writer is never used after it returns.
    """

    def __init__(
        self,
        film: FilmReader,
        writer: FilmWriter,
        colorize_small: ColorizeSmall,
        shrink: Shrink,
        temporal: TemporalFilter | None,
        batch_size: int,
        report: Callable[[int], None],
    ) -> None:
        self.film, self.writer, self.colorize_small, self.shrink = film, writer, colorize_small, shrink
        self.temporal, self.batch_size, self.report = temporal, batch_size, report
        self.spec: YCbCrSpec = film.info.ycbcr
        self.decoded: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES * batch_size)
        self.colorized: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES)
        self._stop = threading.Event()
        self._errors: list[BaseException] = []

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._guarded, args=(self._read,), name="film-reader", daemon=True),
            threading.Thread(target=self._guarded, args=(self._write,), name="film-writer", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self._colorize()
        except BaseException as error:  # KeyboardInterrupt too: the other stages must stop before the file closes
            self._fail(error)
        finally:
            for thread in threads:
                thread.join()
        if self._errors:
            raise self._errors[0]

    def _guarded(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except BaseException as error:
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        if not isinstance(error, _StoppedError):
            self._errors.append(error)
        self._stop.set()

    def _put(self, where: queue.Queue, item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _StoppedError
            try:
                where.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def _items(self, where: queue.Queue) -> Iterator[Any]:
        """What arrives on `where` until its end marker."""
        while True:
            if self._stop.is_set():
                raise _StoppedError
            try:
                item = where.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    # ---- the stages -----------------------------------------------------------------------------

    def _read(self) -> None:
        """Decode frames and shrink their L; pass the other streams' packets on as they are demuxed."""
        frames = self.film.frames(on_packet=lambda packet: self._put(self.decoded, packet))
        try:
            for frame in frames:
                self._put(self.decoded, (frame, self.shrink(luma_to_l(frame.y, self.spec))))
        finally:
            frames.close()
        self._put(self.decoded, _END)

    def _colorize(self) -> None:
        """Batches of frames through the network, in order; packets go straight on to the writer."""
        frames: list[Frame] = []
        smalls: list[Tensor] = []
        for item in self._items(self.decoded):
            if isinstance(item, av.Packet):
                self._put(self.colorized, item)
                continue
            frames.append(item[0])
            smalls.append(item[1])
            if len(frames) == self.batch_size:
                self._put(self.colorized, self._network(frames, smalls))
                frames, smalls = [], []
        if frames:
            self._put(self.colorized, self._network(frames, smalls))
        self._put(self.colorized, _END)

    def _network(self, frames: list[Frame], smalls: list[Tensor]) -> _Batch:
        small = torch.stack(smalls)
        with torch.inference_mode():
            ab = self.colorize_small(small)
        if tuple(ab.shape) != (len(frames), 2, *small.shape[-2:]):
            raise ConfigError(
                f"colorize_small returned shape {tuple(ab.shape)} for L of shape {tuple(small.shape)}; "
                "expected (B, 2, h, w) ab of the same B, h, w"
            )
        return _Batch(frames, small, ab.float().cpu())

    def _write(self) -> None:
        """Filter, chroma and encode every frame in order; copy the other streams' packets."""
        written = 0
        for item in self._items(self.colorized):
            if isinstance(item, av.Packet):
                self.writer.carry(item)
                continue
            for frame, l_small, ab_small in zip(item.frames, item.small, item.ab, strict=True):
                self.writer.write(frame, *self._chroma(frame, l_small, ab_small))
            written += len(item.frames)
            self.report(written)

    def _chroma(self, frame: Frame, l_small: Tensor, ab_small: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One frame's (Cb, Cr) uint8 planes from its predicted working-size ab (filtered here, in order)."""
        with torch.inference_mode():
            if self.temporal is not None:
                ab_small = self.temporal(l_small, ab_small)
            l = luma_to_l(frame.y, self.spec)  # recomputed, not queued: a frame travels as its uint8 Y' plane
            rgb = lab_to_rgb_keep_l(attach_ab(l[None], ab_small[None]))[0]
            return rgb_to_cbcr(rgb, self.spec, self.writer.chroma_subsampled)
