"""Reading and writing films with PyAV, whose wheels bundle FFmpeg and libx264 (no system ffmpeg).

Reading (`probe`, `open_film`) streams decoded frames one at a time: memory does not grow with
the film's length. Each `Frame` carries the decoded luma plane Y' exactly as stored and its
timestamp; `colorization.video.ycbcr` turns Y' into the colorizer's L and a colorized frame back
into chroma planes.

Writing (`FilmWriter`) makes an MP4 with H.264 (libx264) at a CRF on x264's scale (0 lossless
.. 51, default 18), keeping what a viewer would notice:

- **Luma**: each output frame's Y' plane *is* the input's decoded plane; only Cb, Cr come from the
  colorizer (see `colorization.video.ycbcr`). The output is tagged with the input's matrix and
  range, so players decode the kept Y' as the input's. With ``crf=0`` the decoded output's Y'
  equals the input's bit for bit; at 18 it differs by codec rounding only. Films stored with more
  than 8 bits, or as RGB, are first converted to 8-bit Y'CbCr (libx264 here encodes 8 bits).
- **Size**: the input's, always. 4:2:0 chroma needs an even width and height (H.264 crops in
  steps of 2 chroma samples, so no 4:2:0 stream can have an odd size), so an odd-sized film such
  as 321x241 is written 4:4:4 (``yuv444p``, x264's High 4:4:4 profile) with one warning line:
  every pixel and the exact size are kept, but some players (browsers, QuickTime, phones) cannot
  play 4:4:4; padding or cropping instead would change the picture a user asked to colorize.
- **Time**: every frame's pts is copied (in the input's time base), so the frame count, the frame
  rate and variable frame rates are kept. A section (``start_s``/``end_s``) is shifted to begin
  at 0 (source time ``start_s`` becomes 0), for every stream alike.
- **Rotation**: the display matrix a phone or camera wrote (FFmpeg frame side data
  ``DISPLAYMATRIX``; `VideoInfo.rotation` is its counter-clockwise angle) is written unchanged on
  the output stream with PyAV's `VideoStream.set_display_matrix` (PyAV >= 18.1, which puts it in
  the MP4 track header): pixels stay as stored and players turn them as they did the input.
- **Other streams**: audio and subtitles are copied packet by packet (bit-identical payloads)
  when MP4 can hold them and common players play them there. Otherwise, with one warning line
  each: audio MP4 players do not play (PCM from .mov/.avi/.mkv, Vorbis, DTS, ...) is re-encoded
  to AAC (what a user expects: the film plays with its sound everywhere); text subtitles (SRT,
  ASS, WebVTT) become MP4's ``mov_text``; bitmap subtitles, further video streams, data and
  attachment streams (fonts in .mkv) are left out.

Bad input raises one-line `DataError`s naming the file: missing or unreadable (a cut-off MP4
whose index was at the end is unreadable), truncated (a cut-off MP4/MOV whose index came first
ends before the frames it lists), damaged past a frame (the decoder fails), no video stream, no
frames. A cut-off Matroska or MPEG-TS file keeps no frame count to compare with: it is read up to
where it ends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import av
import av.error
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import Interpolation

from colorization.errors import ConfigError, DataError, check_int
from colorization.video import CRF_RANGE, DEFAULT_CRF
from colorization.video.ycbcr import FULL_RANGE_CODE, YCbCrSpec, spec_from_tags

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_FRAMES = 10**9
"""The largest `max_frames` taken (a day of film at 10,000 frames per second)."""
OUTPUT_FORMAT = "mp4"
OUTPUT_SUFFIX = ".mp4"
SUBSAMPLED_FORMAT = "yuv420p"
FULL_CHROMA_FORMAT = "yuv444p"
LUMA_FIRST_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p"}
    | {"yuv411p", "yuv410p", "nv12", "nv21", "nv16", "gray"}
)
"""8-bit pixel formats whose first plane is Y': read as decoded. Others are converted to `FULL_CHROMA_FORMAT`."""
SWS_MATRICES = {"bt601": "itu601", "bt709": "itu709", "bt2020": "bt2020"}
RGB_INTERPOLATION = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
"""swscale's flags for Y'CbCr -> RGB: without the last two its 8-bit RGB is off by up to 2 codes (BT.601's red,
Y'CbCr 81, 90, 240, becomes 253 instead of 254, the rounding of its exact 254.4)."""
MP4_AUDIO = frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus", "flac", "alac"})
"""Audio codecs copied into MP4 unchanged; every other audio codec is re-encoded to AAC."""
AAC_BITS_PER_CHANNEL = 96_000
"""Bit rate of re-encoded AAC per channel (192 kb/s stereo: transparent for FFmpeg's AAC encoder on most material)."""
AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}
AAC_FALLBACK_LAYOUT = "stereo"
"""Channel layouts FFmpeg's AAC encoder takes, by channel count; other counts are mixed down to stereo."""
MP4_SUBTITLE = "mov_text"
TEXT_SUBTITLES = frozenset({"subrip", "srt", "ass", "ssa", "webvtt", "text"})
"""Text subtitle codecs converted to `MP4_SUBTITLE`; bitmap subtitles cannot be."""
DEFAULT_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
    b"Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, "
    b"MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
"""The style sheet FFmpeg's text-subtitle encoders parse; FFmpeg's decoders make the same default one."""


@dataclass(frozen=True)
class OtherStream:
    """A stream beside the video: ``kind`` audio/subtitle/data/attachment, ``codec`` FFmpeg's codec name."""

    index: int
    kind: str
    codec: str


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` finds in a film (the first video stream)."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction
    """Average frames per second (the stream's own guess where the container does not say)."""
    time_base: Fraction
    """Seconds per pts unit of the video stream."""
    duration_s: float | None
    frame_count: int | None
    """Estimated: the container's index where it has one, else duration x frame rate; None if neither is known."""
    rotation: int
    """Degrees a player turns the stored picture counter-clockwise (display matrix), 0 if none."""
    display_matrix: tuple[int, ...] | None
    """The 9 raw display-matrix integers (FFmpeg's 16.16 / 2.30 fixed point), None if the film has none."""
    pix_fmt: str
    ycbcr: YCbCrSpec
    other_streams: tuple[OtherStream, ...]


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its luma plane, unchanged, and when it is shown."""

    index: int
    """0-based position among the frames read."""
    pts: int
    """Presentation time in `VideoInfo.time_base` units (the source's own, even for a section)."""
    time_s: float
    y: np.ndarray
    """(H, W) uint8: the decoded Y' plane, in the range of `VideoInfo.ycbcr`."""
    rgb: np.ndarray | None = None
    """(H, W, 3) uint8 sRGB as a player shows the frame (`rgb_of`), when asked for."""


@contextmanager
def _reading(path: Path, what: str = "cannot read it") -> Iterator[None]:
    """FFmpeg's and the OS's errors while reading `path` -> one `DataError` line naming it."""
    try:
        yield
    except (av.error.FFmpegError, OSError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise DataError(f"{path}: {what} ({reason}); expected a readable video file") from None


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with _reading(path):
        return av.open(str(path), "r")


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise DataError(f"{path}: has no video stream")
    return container.streams.video[0]


def _display_matrix(frame: av.VideoFrame) -> tuple[int, ...] | None:
    for side_data in frame.side_data:
        if side_data.type == SideDataType.DISPLAYMATRIX:
            return tuple(int(v) for v in np.frombuffer(bytes(side_data), dtype=np.int32)[:9])
    return None


def probe(path: str | Path) -> VideoInfo:
    """What the film at `path` holds; decodes its first frame to be sure it has one.

    Raises `DataError` (one line naming the file) when it is missing, unreadable, has no video
    stream or no decodable frame.
    """
    path = Path(path)
    container = _open_input(path)
    with container, _reading(path):
        stream = _video_stream(container, path)
        first = next(container.decode(stream), None)
        if first is None:
            raise DataError(f"{path}: its video stream has no frames")
        time_base = stream.time_base or Fraction(1, 1_000_000)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        duration = _duration_s(container, stream)
        frames = stream.frames or (round(duration * rate) if duration else None)
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            frame_rate=Fraction(rate),
            time_base=Fraction(time_base),
            duration_s=duration,
            frame_count=frames,
            rotation=int(first.rotation),
            display_matrix=_display_matrix(first),
            pix_fmt=first.format.name,
            ycbcr=_spec(first),
            other_streams=tuple(
                OtherStream(s.index, s.type, codec_name(s)) for s in container.streams if s.index != stream.index
            ),
        )


def codec_name(stream: av.stream.Stream) -> str:
    """FFmpeg's name of a stream's codec; ``none`` for streams without one (Matroska attachments)."""
    return stream.codec_context.name if stream.codec_context is not None else "none"


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def _spec(frame: av.VideoFrame) -> YCbCrSpec:
    return spec_from_tags(int(frame.colorspace), int(frame.color_range), frame.format.name, frame.height)


def luma_plane(frame: av.VideoFrame, spec: YCbCrSpec) -> np.ndarray:
    """(H, W) uint8 Y' of a decoded frame: its first plane as stored, or after conversion to 8-bit Y'CbCr."""
    if frame.format.name not in LUMA_FIRST_FORMATS:
        frame = frame.reformat(
            format=FULL_CHROMA_FORMAT,
            src_colorspace=SWS_MATRICES[spec.matrix],
            dst_colorspace=SWS_MATRICES[spec.matrix],
            dst_color_range=spec.range_code,
        )
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : frame.width].copy()


def rgb_of(frame: av.VideoFrame, spec: YCbCrSpec) -> np.ndarray:
    """(H, W, 3) uint8 sRGB of a decoded frame as players show it: Y'CbCr converted with the film's matrix and
    range (`spec`, its tags or what players assume), chroma upsampled bilinearly, by FFmpeg's swscale."""
    if not frame.format.name.startswith(("yuv", "nv", "gray")):
        return frame.to_ndarray(format="rgb24")
    rgb = frame.reformat(
        format="rgb24",
        src_colorspace=SWS_MATRICES[spec.matrix],
        src_color_range=spec.range_code,
        dst_color_range=FULL_RANGE_CODE,
        interpolation=RGB_INTERPOLATION,
    )
    return rgb.to_ndarray()


class FilmReader:
    """An open film, read once from start to end (or a section of it): `frames` streams its frames.

    Use as a context manager (`open_film`); it holds the file open.
    """

    def __init__(
        self,
        path: str | Path,
        start_s: float | None = None,
        end_s: float | None = None,
        max_frames: int | None = None,
    ) -> None:
        start_s, end_s = seconds(start_s, "start"), seconds(end_s, "end")
        if end_s is not None and end_s <= (start_s or 0.0):
            raise ConfigError(f"end={end_s} is not after start={start_s or 0}; expected start < end (seconds)")
        if max_frames is not None:
            check_int("max_frames", max_frames, 1, MAX_FRAMES)
        self.info = probe(path)
        path = self.info.path
        self.start_s, self.end_s, self.max_frames = start_s, end_s, max_frames
        self._container = _open_input(path)
        self._video = _video_stream(self._container, path)
        self._video.thread_type = "AUTO"  # frame-threaded decoding: several times faster on long films
        self.carried = [s for s in self._container.streams if s.index != self._video.index]
        """The input's other streams, in file order: `FilmWriter` decides how each is carried, or that it is not."""
        self.frames_read = 0
        self._last_pts: int | None = None

    def __enter__(self) -> FilmReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    @property
    def whole(self) -> bool:
        """Whether the whole film is read (no section, no frame limit)."""
        return self.start_s is None and self.end_s is None and self.max_frames is None

    @property
    def origin_s(self) -> float:
        """Source time that becomes 0 in the output: the section's start, 0 for a whole film."""
        return self.start_s or 0.0

    def frames(self, on_packet: Callable[[av.Packet], None] | None = None, rgb: bool = False) -> Iterator[Frame]:
        """Decoded frames in presentation order, one at a time (at most `max_frames`); with `rgb`, each with its sRGB.

        `on_packet` receives the packets of `carried` streams as they are demuxed (within the
        section, if one was asked), for a writer to copy them; without it only video is read.
        Timestamps are made strictly increasing (a damaged file may repeat one) with a warning.
        Raises `DataError` naming the file and the frame where the data ends or is damaged, or when
        a whole film ends before its index says (`_check_complete`).
        """
        streams = [self._video, *self.carried] if on_packet is not None else [self._video]
        if self.start_s:
            with _reading(self.info.path, f"cannot seek to {self.start_s} s"):
                self._container.seek(round(self.start_s / self.info.time_base), stream=self._video)
        packets = self._container.demux(streams)
        video_packets = 0
        while (packet := self._read(lambda: next(packets, None))) is not None:
            if packet.stream.type != "video":
                if on_packet is not None and self._in_section(packet):
                    on_packet(packet)  # outside `_read`: a failing writer is not a damaged input
                continue
            video_packets += packet.size > 0
            for decoded in self._read(packet.decode):
                frame = self._frame(decoded, rgb)
                if self.start_s is not None and frame.time_s < self.start_s:
                    continue  # decoded from the keyframe before the section
                if self.end_s is not None and frame.time_s >= self.end_s:
                    return
                self._last_pts = frame.pts
                self.frames_read += 1
                yield frame
                if self.frames_read == self.max_frames:
                    return
        self._check_complete(video_packets)

    def _frame(self, decoded: av.VideoFrame, rgb: bool) -> Frame:
        """A decoded frame as a `Frame`; its pts made strictly increasing (a damaged file may repeat one)."""
        pts, previous = decoded.pts, self._last_pts
        if pts is None:  # no timestamp at all (raw streams): one nominal frame after the previous
            pts = 0 if previous is None else previous + max(1, round(1 / (self.info.frame_rate * self.info.time_base)))
        elif previous is not None and pts <= previous:
            log.warning(
                "%s: frame timestamp %d repeats or goes back after %d; using %d",
                self.info.path,
                pts,
                previous,
                previous + 1,
            )
            pts = previous + 1
        y = self._read(lambda: luma_plane(decoded, self.info.ycbcr))
        colour = self._read(lambda: rgb_of(decoded, self.info.ycbcr)) if rgb else None
        return Frame(self.frames_read, pts, float(pts * self.info.time_base), y, colour)

    def _read(self, step: Callable[[], T]) -> T:
        """`step()`, its FFmpeg errors reported as this film being damaged after the frames read so far."""
        with _reading(
            self.info.path, f"unreadable after frame {self.frames_read}; the file may be truncated or damaged"
        ):
            return step()

    def _in_section(self, packet: av.Packet) -> bool:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None or packet.time_base is None:
            return self.start_s is None and self.end_s is None
        time_s = float(pts * packet.time_base)
        return (self.start_s is None or time_s >= self.start_s) and (self.end_s is None or time_s < self.end_s)

    def _check_complete(self, packets: int) -> None:
        """Refuse a whole film whose file ends before its index says (a cut-off MP4/MOV whose index
        was written first): `packets` video packets were demuxed, the index lists more."""
        if self.frames_read == 0:
            raise DataError(f"{self.info.path}: no frame in {self._section()}")
        listed = self._video.frames  # 0 where the container keeps no count (Matroska, MPEG-TS)
        if self.whole and packets < listed:
            raise DataError(
                f"{self.info.path}: the file ends after {packets} of the {listed} frames its index lists; "
                "it is truncated (an interrupted download or copy?)"
            )

    def _section(self) -> str:
        if self.start_s is None and self.end_s is None:
            return "the film"
        return f"the section {self.start_s or 0} .. {self.end_s if self.end_s is not None else 'end'} s"


def open_film(
    path: str | Path, start_s: float | None = None, end_s: float | None = None, max_frames: int | None = None
) -> FilmReader:
    """A `FilmReader` for the film at `path`: the section [start_s, end_s) in seconds if given, at most `max_frames`."""
    return FilmReader(path, start_s, end_s, max_frames)


class FilmWriter:
    """Writes one MP4 film: H.264 video from Y', Cb, Cr planes, and the input's audio/subtitles.

    `chroma_subsampled` says which chroma planes `write` expects: (H / 2, W / 2) when True (4:2:0),
    (H, W) when False (4:4:4, odd sizes). Use as a context manager: leaving it normally flushes the
    encoders and finishes the file; an error leaves an unfinished file for the caller to delete
    (`colorization.files.atomic.atomic_write` does).
    """

    def __init__(
        self,
        path: str | Path,
        info: VideoInfo,
        crf: int = DEFAULT_CRF,
        carried: Sequence[av.stream.Stream] = (),
        origin_s: float = 0.0,
    ) -> None:
        self.crf = check_crf(crf)
        self.info, self.origin_s = info, origin_s
        self.chroma_subsampled = info.width % 2 == 0 and info.height % 2 == 0
        self._origin_pts = round(origin_s / info.time_base)
        self._container = av.open(str(path), "w", format=OUTPUT_FORMAT)  # the temporary name has no .mp4 suffix
        self._video = self._add_video()
        self._routes: dict[int, Callable[[av.Packet], None]] = {}
        self._flushes: list[Callable[[], None]] = []
        for stream in carried:
            self._add_carried(stream)

    def _add_video(self) -> av.video.stream.VideoStream:
        info = self.info
        fmt = SUBSAMPLED_FORMAT if self.chroma_subsampled else FULL_CHROMA_FORMAT
        if not self.chroma_subsampled:
            log.warning(
                "%s is %dx%d (odd): written as H.264 4:4:4 (%s) to keep its exact size and every pixel; "
                "some players (browsers, QuickTime, phones) cannot play 4:4:4, crop or scale the input "
                "to an even size where that matters",
                info.path,
                info.width,
                info.height,
                fmt,
            )
        video = self._container.add_stream("libx264", rate=info.frame_rate)
        video.width, video.height, video.pix_fmt = info.width, info.height, fmt
        video.time_base = video.codec_context.time_base = info.time_base  # pts copied as they are
        video.options = {"crf": str(self.crf)}
        video.color_range = info.ycbcr.range_code
        video.colorspace = info.ycbcr.matrix_code
        if info.display_matrix is not None:
            video.set_display_matrix(info.display_matrix)
        return video

    def _add_carried(self, source: av.stream.Stream) -> None:
        codec = codec_name(source)
        where = f"{self.info.path}: {source.type} stream #{source.index} ({codec})"
        if source.type == "audio" and codec in MP4_AUDIO or source.type == "subtitle" and codec == MP4_SUBTITLE:
            target = self._container.add_stream_from_template(source)
            self._routes[source.index] = lambda packet: self._copy(packet, target)
        elif source.type == "audio":
            log.warning("%s: MP4 players do not play it; re-encoded to AAC", where)
            self._add_aac(source)
        elif source.type == "subtitle" and codec in TEXT_SUBTITLES:
            log.warning("%s: MP4 cannot hold it; converted to MP4 text subtitles (%s)", where, MP4_SUBTITLE)
            self._add_mov_text(source)
        else:
            log.warning("%s: MP4 cannot hold it; left out", where)

    def _shift(self, pts: int | None, time_base: Fraction) -> int | None:
        return None if pts is None else pts - round(self.origin_s / time_base)

    def _copy(self, packet: av.Packet, target: av.stream.Stream) -> None:
        packet.pts = self._shift(packet.pts, packet.time_base)
        packet.dts = self._shift(packet.dts, packet.time_base)
        packet.stream = target
        self._container.mux(packet)

    def _add_aac(self, source: av.audio.stream.AudioStream) -> None:
        context = source.codec_context
        target = self._container.add_stream("aac", rate=context.sample_rate)
        # the standard layout of that many channels: AAC refuses "N channels" of unknown order (PCM in .mkv/.avi)
        target.layout = AAC_LAYOUTS.get(context.layout.nb_channels, AAC_FALLBACK_LAYOUT)
        target.bit_rate = AAC_BITS_PER_CHANNEL * target.layout.nb_channels

        def encode(packet: av.Packet) -> None:
            for frame in packet.decode():
                frame.pts = self._shift(frame.pts, frame.time_base)
                self._container.mux(target.encode(frame))

        self._routes[source.index] = encode
        self._flushes.append(lambda: self._container.mux(target.encode(None)))

    def _add_mov_text(self, source: av.subtitles.stream.SubtitleStream) -> None:
        target = self._container.add_stream(MP4_SUBTITLE)
        target.codec_context.subtitle_header = source.codec_context.subtitle_header or DEFAULT_ASS_HEADER

        def convert(packet: av.Packet) -> None:
            subtitles = source.codec_context.decode2(packet)
            if subtitles is None or not len(subtitles):
                return
            converted = target.codec_context.encode_subtitle(subtitles)
            converted.pts = converted.dts = self._shift(packet.pts, packet.time_base)
            converted.duration, converted.time_base = packet.duration, packet.time_base
            converted.stream = target
            self._container.mux(converted)

        self._routes[source.index] = convert

    def carry(self, packet: av.Packet) -> None:
        """Copy, re-encode or drop one packet of the input's other streams, as decided at start."""
        if packet.size == 0:
            return  # the demuxer's end-of-stream marker
        route = self._routes.get(packet.stream.index)
        if route is not None:
            route(packet)

    def write(self, frame: Frame, cb: np.ndarray, cr: np.ndarray) -> None:
        """Encode one frame: `frame.y` as it is, and the colorized (Cb, Cr) uint8 planes."""
        out = av.VideoFrame(self.info.width, self.info.height, self._video.pix_fmt)
        for plane, values in zip(out.planes, (frame.y, cb, cr), strict=True):
            rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
            rows[:, : plane.width] = values
        out.pts, out.time_base = frame.pts - self._origin_pts, self.info.time_base
        out.color_range, out.colorspace = self.info.ycbcr.range_code, self.info.ycbcr.matrix_code
        self._container.mux(self._video.encode(out))

    def __enter__(self) -> FilmWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self._container.mux(self._video.encode(None))
                for flush in self._flushes:
                    flush()
        finally:
            self._container.close()


def check_crf(crf: object) -> int:
    """`crf` if it is an integer on x264's scale (`CRF_RANGE`), else a one-line `ConfigError` naming it."""
    return check_int("crf", crf, *CRF_RANGE)


def output_path(source: str | Path, out_dir: str | Path) -> Path:
    """``OUT/<name>.mp4`` for a source film (its suffix replaced)."""
    return Path(out_dir) / (Path(source).stem + OUTPUT_SUFFIX)


def seconds(value: float | None, key: str) -> float | None:
    """A finite, non-negative number of seconds (or None), else a `ConfigError` naming `key`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key}={value!r} is out of range; expected a number of seconds >= 0")
    return float(value)
