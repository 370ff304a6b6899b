"""Films in and out: what a colorized film keeps of its input (frames, timestamps, rate, size,
rotation, sound, luma), the odd cases (odd sizes, variable frame rate, no audio, Matroska with PCM
and SRT, sections), broken files, and atomic writes."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorization.color.spaces import rgb_to_lab
from colorization.errors import ConfigError, DataError
from colorization.inference import films
from colorization.inference.films import stream_film
from colorization.video import io as video_io
from colorization.video.io import OtherStream, open_film, probe
from colorization.video.ycbcr import YCbCrSpec, luma_to_l, rgb_to_cbcr
from tests.helpers.clips import (
    FPS,
    film_clip,
    gray_to_y,
    truncate,
    write_converted_film,
    write_empty_film,
    write_film,
)

REPO = Path(__file__).resolve().parents[1]
COLOUR = (30.0, 20.0)
"""The test colorizer's a*, b*: a warm orange everywhere."""
MID_TONES = (20.0, 80.0)
"""L* range in which sRGB holds that orange at its full chroma."""


def orange(l: torch.Tensor) -> torch.Tensor:
    """(B, 1, h, w) L -> (B, 2, h, w) ab: the same colour everywhere."""
    return torch.tensor(COLOUR).view(1, 2, 1, 1).expand(len(l), 2, *l.shape[-2:]).clone()


def halve(l: torch.Tensor) -> torch.Tensor:
    """(1, H, W) -> (1, H / 2, W / 2): the network's working size is smaller than the film's."""
    return F.interpolate(l[None], scale_factor=0.5, mode="area")[0]


def lumas(path: Path) -> list[np.ndarray]:
    with open_film(path) as film:
        return [frame.y for frame in film.frames()]


def times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(frame.pts * stream.time_base for frame in container.decode(stream))


def audio_payloads(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(container.streams.audio[0]) if packet.size]


@pytest.fixture(scope="module")
def pan_film(tmp_path_factory) -> Path:
    """24 frames of a grainy, flickering pan at 96x72, 24 fps, turned 90 degrees, with an AAC tone."""
    return write_film(tmp_path_factory.mktemp("films") / "pan.mp4", film_clip(24).gray, rotation=90)


def test_probe(pan_film):
    info = probe(pan_film)
    assert (info.width, info.height, info.frame_rate, info.frame_count) == (96, 72, FPS, 24)
    assert info.rotation == 90
    assert info.duration_s == pytest.approx(1.0)
    assert info.ycbcr == YCbCrSpec("bt601", full_range=False)  # untagged SD film: what players assume
    assert info.other_streams == (OtherStream(1, "audio", "aac"),)


@pytest.mark.parametrize("crf", [0, 18])
def test_colorized_film_keeps_frames_time_size_rotation_sound_and_luma(pan_film, tmp_path, crf):
    result = stream_film(pan_film, tmp_path / "pan.mp4", orange, halve, crf=crf)
    assert result.frames == 24 and result.target == tmp_path / "pan.mp4"

    before, after = probe(pan_film), probe(result.target)
    assert (after.width, after.height, after.frame_rate, after.frame_count) == (96, 72, FPS, 24)
    assert after.rotation == 90 and after.display_matrix == before.display_matrix
    assert times(result.target) == times(pan_film)
    assert audio_payloads(result.target) == audio_payloads(pan_film)  # copied, not re-encoded

    y_in, y_out = np.stack(lumas(pan_film)).astype(int), np.stack(lumas(result.target)).astype(int)
    if crf == 0:
        assert np.array_equal(y_in, y_out)
    else:  # codec rounding only: as close as the same film re-encoded without colour
        gray = stream_film(pan_film, tmp_path / "gray.mp4", lambda l: torch.zeros(len(l), 2, *l.shape[-2:]), halve)
        y_gray = np.stack(lumas(gray.target)).astype(int)
        assert np.abs(y_in - y_out).mean() <= 1.1 * np.abs(y_in - y_gray).mean()
        assert 10 * np.log10(255**2 / ((y_in - y_out) ** 2).mean()) > 38  # PSNR of Y', dB

    # and the colour is the one predicted, where sRGB can show it (very dark and bright pixels have less chroma)
    with av.open(str(result.target)) as container:
        rgb = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    lab = rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0)
    mid = (lab[:, 0] > MID_TONES[0]) & (lab[:, 0] < MID_TONES[1])
    assert lab[:, 1][mid].mean() == pytest.approx(COLOUR[0], abs=2.0)
    assert lab[:, 2][mid].mean() == pytest.approx(COLOUR[1], abs=2.0)


def test_frames_stream_with_a_bounded_lead_and_progress_after_each_batch(pan_film, tmp_path, monkeypatch):
    decoded, batches, reports = [], [], []
    read_luma = video_io.luma_plane
    monkeypatch.setattr(video_io, "luma_plane", lambda frame, spec: decoded.append(1) or read_luma(frame, spec))

    def colorize_small(l: torch.Tensor) -> torch.Tensor:
        batches.append((len(l), len(decoded)))  # batch size, frames decoded so far
        return orange(l)

    stream_film(pan_film, tmp_path / "pan.mp4", colorize_small, halve, batch_size=5, progress=reports.append)
    assert [size for size, _ in batches] == [5, 5, 5, 5, 4]
    # the reader runs ahead of the network by at most its queue (and the frame in its hands), never the film
    ahead = [decoded_then - 5 * (k + 1) for k, (_, decoded_then) in enumerate(batches)]
    assert max(ahead) <= films.QUEUED_BATCHES * 5 + 1, ahead
    assert [(r.frames, r.total) for r in reports] == [(5, 24), (10, 24), (15, 24), (20, 24), (24, 24)]
    assert reports[-1].eta_s == 0.0 and reports[-1].frames_per_s > 0


def test_an_error_in_any_stage_stops_the_film_with_that_error(pan_film, tmp_path, monkeypatch):
    def failing_network(l: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        stream_film(pan_film, tmp_path / "a.mp4", failing_network, halve)

    def failing_write(self, frame, cb, cr):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video_io.FilmWriter, "write", failing_write)
    with pytest.raises(OSError, match="No space left"):
        stream_film(pan_film, tmp_path / "b.mp4", orange, halve, batch_size=2)
    assert not list(tmp_path.iterdir())  # neither output, nor a temporary
    assert [t.name for t in threading.enumerate() if t.name.startswith("film-")] == []  # no stage outlives it


def test_variable_frame_rate_is_kept(tmp_path):
    pts = [0, 1, 3, 4, 7, 8, 9, 13, 14, 18]
    source = write_film(tmp_path / "vfr.mp4", film_clip(len(pts)).gray, pts=pts, audio=None)
    result = stream_film(source, tmp_path / "out" / "vfr.mp4", orange, halve)
    assert times(result.target) == [Fraction(p, 24) for p in pts]


def test_an_odd_sized_film_keeps_its_size_in_444(tmp_path, caplog):
    source = write_film(tmp_path / "odd.mp4", film_clip(4, 241, 321).gray, pix_fmt="yuv444p", audio=None)
    with caplog.at_level(logging.WARNING):
        result = stream_film(source, tmp_path / "out" / "odd.mp4", orange, halve, crf=0)
    info = probe(result.target)
    assert (info.width, info.height, info.pix_fmt) == (321, 241, "yuv444p")
    assert np.array_equal(np.stack(lumas(source)), np.stack(lumas(result.target)))
    odd = [record.getMessage() for record in caplog.records if "odd" in record.getMessage()]
    assert len(odd) == 1 and "321x241" in odd[0] and "4:4:4" in odd[0]


def test_a_film_without_sound_stays_silent(tmp_path):
    source = write_film(tmp_path / "silent.mp4", film_clip(4).gray, audio=None)
    result = stream_film(source, tmp_path / "out" / "silent.mp4", orange, halve)
    assert probe(result.target).other_streams == ()


def test_full_range_input_keeps_its_range(tmp_path):
    source = write_film(tmp_path / "full.mp4", film_clip(4).gray, pix_fmt="yuvj420p", audio=None)
    result = stream_film(source, tmp_path / "out" / "full.mp4", orange, halve, crf=0)
    assert probe(result.target).ycbcr.full_range
    assert np.array_equal(np.stack(lumas(source)), np.stack(lumas(result.target)))


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"), [("ten.mkv", "ffv1", "yuv420p10le"), ("rgb.mov", "png", "rgb24")]
)
def test_films_in_10_bits_or_rgb_are_read_as_8_bit_luma(tmp_path, name, codec, pix_fmt):
    gray = film_clip(3).gray
    source = write_converted_film(tmp_path / name, gray, codec, pix_fmt)
    assert probe(source).pix_fmt == pix_fmt
    assert np.abs(np.stack(lumas(source)).astype(int) - gray_to_y(gray)).max() <= 1
    result = stream_film(source, tmp_path / "out.mp4", orange, halve, crf=0)
    assert np.array_equal(np.stack(lumas(result.target)), np.stack(lumas(source)))


def test_matroska_pcm_srt_and_a_font_become_aac_mp4_text_and_a_warning(tmp_path, caplog):
    cues = [(0.1, 0.4, "Hello"), (0.3, 0.45, "there")]
    source = write_film(tmp_path / "old.mkv", film_clip(12).gray, audio="pcm_s16le", subtitles=cues, attachment=b"font")
    with caplog.at_level(logging.WARNING):
        result = stream_film(source, tmp_path / "out" / "old.mp4", orange, halve)
    assert [(s.kind, s.codec) for s in probe(result.target).other_streams] == [
        ("audio", "aac"),
        ("subtitle", "mov_text"),
    ]
    warnings = [record.getMessage() for record in caplog.records]
    assert any("pcm_s16le" in w and "re-encoded to AAC" in w for w in warnings)
    assert any("srt" in w and "mov_text" in w for w in warnings)
    assert any("attachment stream #3 (none)" in w and "left out" in w for w in warnings)
    assert len(warnings) == 3
    with av.open(str(result.target)) as container:
        text = b"".join(bytes(p) for p in container.demux(container.streams.subtitles[0]) if p.size)
    with av.open(str(result.target)) as container:
        sound = sum(frame.samples for frame in container.decode(audio=0))
    assert b"Hello" in text and b"there" in text
    assert sound == pytest.approx(0.5 * 48_000, rel=0.05)  # the whole tone, re-encoded


def test_a_section_starts_at_zero(pan_film, tmp_path):
    result = stream_film(pan_film, tmp_path / "part.mp4", orange, halve, start_s=0.25, end_s=0.75)
    assert result.frames == 12  # frames at 6/24 .. 17/24 s
    assert times(result.target) == [Fraction(t, 24) for t in range(12)]
    with av.open(str(result.target)) as container:
        audio = container.streams.audio[0]
        starts = [float(p.pts * audio.time_base) for p in container.demux(audio) if p.size]
    assert min(starts) >= 0.0 and max(starts) < 0.5


def test_broken_films_fail_with_one_line_and_leave_nothing(tmp_path):
    clip = film_clip(24).gray
    cut_index = truncate(write_film(tmp_path / "cut_index.mp4", clip), keep=0.6)  # MP4 index at the end: lost
    cut_frames = truncate(write_film(tmp_path / "cut_frames.mp4", clip, options={"movflags": "+faststart"}), keep=0.6)
    expected = {
        cut_index: "cannot read it",
        cut_frames: "the file ends after .* of the 24 frames its index lists; it is truncated",
        write_empty_film(tmp_path / "empty.mkv"): "its video stream has no frames",
        write_empty_film(tmp_path / "empty.mp4"): "has no video stream",  # MP4 drops an empty track
        tmp_path / "missing.mp4": "no such file",
    }
    for source, message in expected.items():
        target = tmp_path / "out" / source.name
        with pytest.raises(DataError, match=message) as error:
            stream_film(source, target, orange, halve)
        assert str(source) in str(error.value) and "\n" not in str(error.value)
        assert not target.exists()
    assert not list((tmp_path / "out").glob(".*partial*"))  # no temporary file left behind


def test_a_killed_run_leaves_no_film_under_its_name(pan_film, tmp_path):
    target = tmp_path / "killed.mp4"
    script = f"""
import os, signal, torch
from colorization.inference.films import stream_film
calls = []
def colorize_small(l):
    calls.append(1)
    if len(calls) == 2:  # the output was opened under its temporary name when the film started
        os.kill(os.getpid(), signal.SIGKILL)
    return torch.zeros(len(l), 2, *l.shape[-2:])
stream_film({str(pan_film)!r}, {str(target)!r}, colorize_small, lambda l: l, batch_size=8)
"""
    process = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, timeout=120)
    assert process.returncode == -signal.SIGKILL, process.stderr.decode()
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".killed.mp4.partial-")]  # it had begun


def test_bad_settings_are_refused_in_one_line(pan_film, tmp_path):
    target = tmp_path / "out.mp4"
    cases = [
        ({"crf": 52}, "crf=52 is out of range; expected an integer in 0..51"),
        ({"batch_size": 0}, "batch_size=0 is out of range"),
        ({"start_s": 0.5, "end_s": 0.5}, "end=0.5 is not after start=0.5"),
        ({"start_s": -1.0}, "start=-1.0 is out of range"),
        ({"deflicker": "blur"}, "deflicker='blur' is unknown"),
    ]
    for settings, message in cases:
        with pytest.raises(ConfigError, match=message):
            stream_film(pan_film, target, orange, halve, **settings)
    with pytest.raises(ConfigError, match=r"colorize_small returned shape \(8, 3, 36, 48\)"):
        stream_film(pan_film, target, lambda l: torch.zeros(len(l), 3, *l.shape[-2:]), halve)
    assert not target.exists()


def test_luma_to_l_and_chroma_codes_follow_the_standards():
    limited, full = YCbCrSpec("bt601", full_range=False), YCbCrSpec("bt601", full_range=True)
    codes = np.array([[0, 16, 126, 235, 255]], np.uint8)
    l = luma_to_l(codes, limited)[0, 0]
    assert l[0] == l[1] == pytest.approx(0.0, abs=1e-3) and l[3] == l[4] == pytest.approx(100.0, abs=1e-3)
    value = (126 - 16) / 219  # the gray sRGB value of code 126, then CIE L* by its formula
    assert l[2] == pytest.approx(116 * ((value + 0.055) / 1.055) ** (2.4 / 3) - 16, abs=0.01)
    assert luma_to_l(np.array([[255]], np.uint8), full)[0, 0, 0] == pytest.approx(100.0, abs=1e-3)

    # BT.601 limited-range red is Y' 81, Cb 90, Cr 240 (the textbook values); gray has no chroma
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 2, 2)
    assert [int(plane[0, 0]) for plane in rgb_to_cbcr(red, limited, subsample=True)] == [90, 240]
    gray = torch.full((3, 2, 2), 0.3)
    assert [int(plane[0, 0]) for plane in rgb_to_cbcr(gray, full, subsample=False)] == [128, 128]
