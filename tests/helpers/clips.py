"""Tiny films the video tests make themselves: a pan and zoom over a colour photo with film grain
and exposure flicker (its motion known exactly), scene cuts, odd sizes, variable frame rates,
rotation, audio and subtitles, and broken files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from skimage import data

from colorization.color.spaces import rgb_to_lab

FPS = Fraction(24)
AUDIO_RATE = 48_000
TONE_HZ = 440.0
AUDIO_FRAME = 1024
EXPOSURE_FLICKER = 0.10
"""Each frame's exposure is the scene's times a factor drawn from 1 +- 0.10 (linear light)."""
GRAIN_STD = 0.02
"""Fresh Gaussian film grain per frame, standard deviation in gray sRGB [0, 1] (about 5 codes of 255)."""
SOURCE_SIDE = 192
"""The photo is first shrunk to this square, so frames sample it without aliasing."""
PHOTOS = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea}


@dataclass(frozen=True)
class Pan:
    """A slow pan and zoom: frame t's pixel p shows source point ``zoom_t * p + offset_t`` (source pixels)."""

    zooms: np.ndarray
    """(T,) source pixels per frame pixel."""
    offsets: np.ndarray
    """(T, 2) source position (x, y) of frame pixel (0, 0)."""

    def flow(self, t0: int, t1: int, height: int, width: int) -> np.ndarray:
        """(H, W, 2) exact flow from frame t0 to frame t1 (same conventions as `colorization.video.flow`)."""
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
        points = np.stack([xs, ys], axis=-1)
        source = self.zooms[t0] * points + self.offsets[t0]
        return ((source - self.offsets[t1]) / self.zooms[t1] - points).astype(np.float32)


@dataclass(frozen=True)
class Clip:
    """Frames of a test film, in memory."""

    gray: np.ndarray
    """(T, H, W) uint8 gray sRGB codes 0..255: what the black-and-white film shows (grain, flicker)."""
    rgb: np.ndarray
    """(T, H, W, 3) float32 sRGB in [0, 1]: the scene's true colours (no grain, no flicker)."""
    pan: Pan

    @property
    def l_frames(self) -> torch.Tensor:
        """(T, 1, H, W) L in [0, 100] of the gray frames: the colorizer's input."""
        gray = torch.from_numpy(self.gray).float().div(255.0).unsqueeze(1)
        return rgb_to_lab(gray.expand(-1, 3, -1, -1))[:, :1]

    @property
    def ab(self) -> torch.Tensor:
        """(T, 2, H, W) the scene's true ab."""
        return rgb_to_lab(torch.from_numpy(self.rgb).permute(0, 3, 1, 2))[:, 1:]


def _source(name: str) -> np.ndarray:
    photo = PHOTOS[name]()
    side = min(photo.shape[:2])
    square = photo[:side, :side].astype(np.float32) / 255.0
    return cv2.resize(square, (SOURCE_SIDE, SOURCE_SIDE), interpolation=cv2.INTER_AREA)


def pan_and_zoom(
    frames: int, height: int, width: int, step: tuple[float, float] = (0.6, 0.3), zoom_step: float = 0.004
) -> Pan:
    """A pan of `step` frame pixels per frame while zooming in by `zoom_step` per frame, inside the source."""
    t = np.arange(frames, dtype=np.float64)
    zooms = 1.4 * (1.0 - zoom_step) ** t
    offsets = np.stack([20.0 + step[0] * t * zooms, 16.0 + step[1] * t * zooms], axis=-1)
    return Pan(zooms=zooms, offsets=offsets)


def _gray_value(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB -> (...) the gray sRGB value with the same L* (what a black-and-white print shows)."""
    lab = rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None])
    l = lab[0, 0].numpy()
    luminance = np.where(l > 8.0, ((l + 16.0) / 116.0) ** 3, l / 903.3)  # CIE L* -> relative luminance Y
    return _encode_srgb(luminance)


def _encode_srgb(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def _decode_srgb(value: np.ndarray) -> np.ndarray:
    return np.where(value <= 0.04045, value / 12.92, ((value + 0.055) / 1.055) ** 2.4)


def film_clip(
    frames: int = 24,
    height: int = 72,
    width: int = 96,
    photo: str = "astronaut",
    seed: int = 0,
    pan: Pan | None = None,
) -> Clip:
    """A pan and zoom over `photo`, made black-and-white with fresh grain and its own exposure every frame."""
    rng = np.random.default_rng(seed)
    pan = pan or pan_and_zoom(frames, height, width)
    source = _source(photo)
    rgb = np.empty((frames, height, width, 3), np.float32)
    gray = np.empty((frames, height, width), np.uint8)
    for t in range(frames):
        matrix = np.array([[pan.zooms[t], 0.0, pan.offsets[t, 0]], [0.0, pan.zooms[t], pan.offsets[t, 1]]])
        rgb[t] = cv2.warpAffine(
            source,
            matrix,
            (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        exposure = 1.0 + rng.uniform(-EXPOSURE_FLICKER, EXPOSURE_FLICKER)
        value = _encode_srgb(_decode_srgb(_gray_value(rgb[t])) * exposure) + rng.normal(0.0, GRAIN_STD, (height, width))
        gray[t] = np.clip(np.round(value * 255.0), 0, 255).astype(np.uint8)
    return Clip(gray=gray, rgb=rgb, pan=pan)


def scene_cut_clip(frames_each: int = 8, height: int = 72, width: int = 96) -> tuple[Clip, int]:
    """Two shots (astronaut, then coffee) joined by a cut; returns the clip and the first frame after the cut."""
    first = film_clip(frames_each, height, width, photo="astronaut", seed=1)
    second = film_clip(frames_each, height, width, photo="coffee", seed=2)
    pan = Pan(
        np.concatenate([first.pan.zooms, second.pan.zooms]), np.concatenate([first.pan.offsets, second.pan.offsets])
    )
    return Clip(np.concatenate([first.gray, second.gray]), np.concatenate([first.rgb, second.rgb]), pan), frames_each


@dataclass(frozen=True)
class MovingSquare:
    """A textured square sliding right over a still textured background, with grain."""

    l: torch.Tensor
    """(T, 1, H, W) L in [0, 100]."""
    square: np.ndarray
    """(T, H, W) bool: where the square is in each frame."""
    step: int
    """Pixels the square moves right per frame."""


def moving_square(
    frames: int = 10, height: int = 72, width: int = 96, step: int = 3, side: int = 24, seed: int = 0
) -> MovingSquare:
    """Coffee as the background, a patch of the astronaut as the square, entering at x = 20."""
    rng = np.random.default_rng(seed)
    background = _source("coffee")[:height, :width]
    patch = _source("astronaut")[40 : 40 + side, 40 : 40 + side]
    top = (height - side) // 2
    l = np.empty((frames, 1, height, width), np.float32)
    square = np.zeros((frames, height, width), bool)
    for t in range(frames):
        picture = background.copy()
        left = 20 + step * t
        picture[top : top + side, left : left + side] = patch
        square[t, top : top + side, left : left + side] = True
        value = _gray_value(picture) + rng.normal(0.0, GRAIN_STD, (height, width))
        gray = torch.from_numpy(np.clip(value, 0.0, 1.0).astype(np.float32))
        l[t] = rgb_to_lab(gray.expand(1, 3, -1, -1))[:, :1].numpy()
    return MovingSquare(torch.from_numpy(l), square, step)


# ---- files -------------------------------------------------------------------------------------


def gray_to_y(gray: np.ndarray) -> np.ndarray:
    """Gray sRGB codes -> limited-range Y' codes (16 + 219 v): how an encoder stores a gray picture."""
    return np.round(16.0 + 219.0 * gray.astype(np.float64) / 255.0).astype(np.uint8)


def _video_frame(y: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    height, width = y.shape
    frame = av.VideoFrame(width, height, pix_fmt)
    for index, plane in enumerate(frame.planes):
        rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        rows[:, : plane.width] = y if index == 0 else 128
    return frame


def write_film(
    path: Path,
    gray: np.ndarray,
    *,
    fps: Fraction = FPS,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    audio: str | None = "aac",
    subtitles: Sequence[tuple[float, float, str]] = (),
    rotation: int = 0,
    pix_fmt: str = "yuv420p",
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    attachment: bytes | None = None,
) -> Path:
    """Write (T, H, W) gray frames as a film (container from the suffix) with a sine tone and subtitles.

    `pts` (in `time_base`, default 1 / fps) makes a variable frame rate; `audio` is the audio codec
    (None: no audio); `subtitles` are (start s, end s, text) cues in an ``srt`` stream; `options`
    are the container's (e.g. ``{"movflags": "+faststart"}``); `attachment` is a font file's bytes
    attached as Matroska does.
    """
    time_base = time_base or 1 / fps
    pts = list(pts) if pts is not None else list(range(len(gray)))
    container = av.open(str(path), "w", options=options or {})
    video = container.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = gray.shape[2], gray.shape[1], pix_fmt
    video.time_base = video.codec_context.time_base = time_base
    if rotation:
        video.set_display_rotation(rotation)
    sound = _add_audio(container, audio)
    text = _add_subtitles(container, subtitles)
    if attachment is not None:
        container.add_attachment("font.ttf", "application/x-truetype-font", attachment)
    for y, when in zip(gray_to_y(gray), pts, strict=True):
        frame = _video_frame(y, pix_fmt)
        frame.pts, frame.time_base = when, time_base
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    duration_s = float((pts[-1] + 1) * time_base) if len(pts) else 0.0
    if sound is not None:
        _write_tone(container, sound, duration_s)
    if text is not None:
        _write_subtitles(container, text, subtitles)
    container.close()
    return path


def _add_audio(container: av.container.OutputContainer, codec: str | None) -> av.audio.stream.AudioStream | None:
    if codec is None:
        return None
    stream = container.add_stream(codec, rate=AUDIO_RATE)
    stream.layout = "mono"
    return stream


def _write_tone(
    container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, duration_s: float
) -> None:
    samples = np.arange(int(duration_s * AUDIO_RATE))
    tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * samples / AUDIO_RATE)).astype(np.float32)
    for start in range(0, len(tone), AUDIO_FRAME):
        frame = av.AudioFrame.from_ndarray(tone[None, start : start + AUDIO_FRAME], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


SRT_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\nStyle: Default,Arial,16\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def _add_subtitles(
    container: av.container.OutputContainer, cues: Sequence[tuple[float, float, str]]
) -> av.stream.Stream | None:
    if not cues:
        return None
    stream = container.add_stream("subrip")
    stream.codec_context.subtitle_header = SRT_HEADER
    return stream


def _write_subtitles(
    container: av.container.OutputContainer, stream: av.stream.Stream, cues: Sequence[tuple[float, float, str]]
) -> None:
    for start_s, end_s, text in cues:
        cue = av.subtitles.subtitle.SubtitleSet.create(
            text=b"0,0,Default,,0,0,0,," + text.encode(), start=0, end=round((end_s - start_s) * 1000)
        )
        packet = stream.codec_context.encode_subtitle(cue)
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = round(start_s * 1000)
        packet.duration = round((end_s - start_s) * 1000)
        packet.stream = stream
        container.mux(packet)


def write_converted_film(path: Path, gray: np.ndarray, codec: str, pix_fmt: str) -> Path:
    """Gray frames stored in another pixel format (e.g. 10-bit ``yuv420p10le``, ``rgb24``), converted by FFmpeg."""
    container = av.open(str(path), "w")
    video = container.add_stream(codec, rate=FPS)
    video.width, video.height, video.pix_fmt = gray.shape[2], gray.shape[1], pix_fmt
    for t, picture in enumerate(gray):
        rgb = av.VideoFrame.from_ndarray(np.repeat(picture[..., None], 3, axis=-1), format="rgb24")
        frame = rgb.reformat(format=pix_fmt, dst_colorspace="itu601", dst_color_range=1)  # limited range, BT.601
        frame.pts, frame.time_base = t, 1 / FPS
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    container.close()
    return path


def write_colour_film(path: Path, rgb: np.ndarray, fps: Fraction = FPS, audio: str | None = None) -> Path:
    """(T, H, W, 3) sRGB frames (float in [0, 1]) as a colour H.264 film, stored as cameras do (BT.601, limited
    range, 4:2:0), with a sine tone in `audio`'s codec (None: silent)."""
    codes = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = rgb.shape[2], rgb.shape[1], "yuv420p"
    video.time_base = video.codec_context.time_base = 1 / fps
    sound = _add_audio(container, audio)
    for t, picture in enumerate(codes):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace="itu601", dst_color_range=1)
        frame.pts, frame.time_base = t, 1 / fps
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    if sound is not None:
        _write_tone(container, sound, len(codes) / fps)
    container.close()
    return path


def write_empty_film(path: Path, height: int = 48, width: int = 64) -> Path:
    """A film whose video stream has no frame (Matroska keeps the empty track; MP4 would drop it), with sound."""
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    _write_tone(container, _add_audio(container, "aac"), duration_s=0.5)
    container.close()
    return path


def truncate(path: Path, keep: float = 0.6) -> Path:
    """Cut the end off a file (a failed download): only the first `keep` of its bytes remain."""
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])
    return path
