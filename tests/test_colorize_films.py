"""`colorize` on films: a folder of photos and films of every awkward kind, the tally, reruns, a killed
run, sections, bad options, the progress bar and the Python API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from colorization.colorize import colorize_paths, colorize_video
from colorization.colorize.cli import main
from colorization.colorize.video import TqdmProgress
from colorization.errors import ConfigError
from colorization.files.atomic import TEMP_MARK
from colorization.inference.films import stream_film
from colorization.modules.build import build_module
from colorization.video.io import open_film, probe
from tests.helpers.clips import FPS, film_clip, truncate, write_empty_film, write_film
from tests.helpers.configs import REPO
from tests.helpers.weights import CNN_CONFIG


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train.py-style checkpoint of a tiny study CNN (random weights): fast enough for films."""
    torch.manual_seed(0)
    model = build_module(CNN_CONFIG, "lab")
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    path = tmp_path_factory.mktemp("cnn") / "cnn.ckpt"
    torch.save(checkpoint, path)
    return path


def lumas(path: Path) -> np.ndarray:
    with open_film(path) as film:
        return np.stack([frame.y for frame in film.frames()])


def times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(frame.pts * stream.time_base for frame in container.decode(stream))


def make_folder(root: Path) -> dict[str, Path]:
    """Photos and films of every kind `colorize` meets; name -> source."""
    (root / "reels").mkdir(parents=True)
    sources = {
        "pan.mp4": write_film(root / "pan.mp4", film_clip(12).gray),  # grain, flicker, an AAC tone
        "odd.mkv": write_film(root / "odd.mkv", film_clip(3, 41, 57).gray, pix_fmt="yuv444p", audio=None),
        "vfr.mov": write_film(root / "reels" / "vfr.mov", film_clip(5).gray, pts=[0, 1, 3, 4, 8], audio=None),
        "cut.mp4": truncate(write_film(root / "cut.mp4", film_clip(24).gray, options={"movflags": "+faststart"}), 0.6),
        "empty.mkv": write_empty_film(root / "empty.mkv"),
    }
    Image.fromarray(film_clip(1, 40, 48).gray[0]).save(root / "still.png")
    (root / "notes.txt").write_text("not a film")
    return sources


def test_a_folder_of_photos_and_films_end_to_end(cnn, tmp_path, capsys):
    sources = make_folder(tmp_path / "in")
    out = tmp_path / "out"
    args = [str(tmp_path / "in"), "--model", str(cnn), "--out", str(out), "--recursive", "--workers", "0"]
    assert main([*args, "--quiet"]) == 1  # some files failed
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2
    assert str(sources["cut.mp4"]) in failed[0] and "truncated" in failed[0]
    assert str(sources["empty.mkv"]) in failed[1] and "no frames" in failed[1]
    assert captured.out.startswith("done 4, skipped 0, failed 2 (")
    assert "20 frames at " in captured.out  # pan 12 + odd 3 + vfr 5
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["odd.mp4", "pan.mp4", "reels/vfr.mp4", "still.png"]

    pan, odd, vfr = out / "pan.mp4", out / "odd.mp4", out / "reels" / "vfr.mp4"
    assert (probe(pan).frame_count, probe(pan).frame_rate, times(pan)) == (12, FPS, times(sources["pan.mp4"]))
    assert [s.kind for s in probe(pan).other_streams] == ["audio"]
    squared = ((lumas(pan).astype(float) - lumas(sources["pan.mp4"])) ** 2).mean()
    assert 10 * np.log10(255**2 / squared) > 38  # PSNR of Y', dB: the input's luma within codec rounding
    assert (probe(odd).width, probe(odd).height) == (57, 41)
    assert times(vfr) == [Fraction(p, 24) for p in (0, 1, 3, 4, 8)]

    # a rerun skips what is done and still reports the broken films
    assert main([*args, "--quiet"]) == 1
    assert capsys.readouterr().out.startswith("done 0, skipped 4, failed 2")


def test_a_film_section_and_the_films_options(cnn, tmp_path, capsys):
    source = write_film(tmp_path / "pan.mp4", film_clip(24).gray)
    out = tmp_path / "out"
    common = ["--model", str(cnn), "--out", str(out), "--quiet"]
    assert main([str(source), *common, "--start", "0.25", "--end", "0.75", "--deflicker", "none", "--crf", "0"]) == 0
    assert capsys.readouterr().out.startswith("done 1, skipped 0, failed 0")
    assert times(out / "pan.mp4") == [Fraction(t, 24) for t in range(12)]
    with open_film(source, start_s=0.25, end_s=0.75) as film:
        section = np.stack([frame.y for frame in film.frames()])
    assert np.array_equal(lumas(out / "pan.mp4"), section)  # crf 0: the input's luma, bit for bit

    cases = [
        (["--crf", "52"], "crf=52 is out of range; expected an integer in 0..51"),
        (["--end", "0"], "--end=0.0 is not after --start=0"),
        (["--start", "-1"], "--start=-1.0 is out of range"),
    ]
    for options, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main([str(source), *common, "--overwrite", *options])
        assert exit_info.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines == [f"error: {message}" + lines[0].split(message, 1)[1]], lines
    with pytest.raises(SystemExit):  # argparse's own choice check
        main([str(source), *common, "--deflicker", "blur"])
    assert "invalid choice: 'blur'" in capsys.readouterr().err


def test_outputs_never_overwrite_input_films_or_each_other(cnn, tmp_path):
    write_film(tmp_path / "a.mp4", film_clip(2).gray, audio=None)
    with pytest.raises(ConfigError, match="would overwrite an input film"):
        colorize_paths([tmp_path / "a.mp4"], str(cnn), tmp_path, workers=0)
    write_film(tmp_path / "a.mov", film_clip(2).gray, audio=None)
    with pytest.raises(ConfigError, match=r"would both be written to .*a\.mp4"):
        colorize_paths([tmp_path], str(cnn), tmp_path / "out", workers=0)
    with pytest.raises(ConfigError, match=r"--hints apply to one photo, but 0 photo\(s\) and 1 film\(s\)"):
        colorize_paths([tmp_path / "a.mp4"], str(cnn), tmp_path / "out", workers=0, hints=[])
    assert not (tmp_path / "out").exists()


def test_the_python_api_colorizes_one_film_into_colorized(cnn, tmp_path, monkeypatch):
    source = write_film(tmp_path / "old.mkv", film_clip(6).gray, audio="pcm_s16le")
    monkeypatch.chdir(tmp_path)
    result = colorize_video(source, str(cnn), deflicker="none")
    assert result.target == Path("colorized") / "old.mp4" and result.frames == 6 and result.frames_per_s > 0
    assert [(s.kind, s.codec) for s in probe(result.target).other_streams] == [("audio", "aac")]
    again = colorize_video(source, str(cnn), tmp_path / "elsewhere.mp4", crf=0)
    assert np.array_equal(lumas(again.target), lumas(source))


def test_the_progress_bar_shows_frames_rate_and_eta(tmp_path, capsys):
    source = write_film(tmp_path / "pan.mp4", film_clip(24).gray)
    bar = TqdmProgress()
    stream_film(
        source, tmp_path / "out.mp4", lambda l: torch.zeros(len(l), 2, *l.shape[-2:]), lambda l: l, progress=bar
    )
    bar.close()
    shown = capsys.readouterr().err
    assert "pan.mp4" in shown and "24/24" in shown and "frame/s" in shown and "<00:00" in shown  # the ETA


@pytest.mark.slow
def test_a_killed_run_leaves_no_partial_film_and_a_rerun_finishes_it(cnn, tmp_path):
    source = write_film(tmp_path / "long.mp4", film_clip(192, 96, 128).gray)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "colorization.colorize", str(source), "--model", str(cnn)]
    command += ["--out", str(out), "--batch-size", "1", "--quiet"]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob(f".long.mp4{TEMP_MARK}*")):
        time.sleep(0.01)
    time.sleep(0.5)  # some frames into the film
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(out.glob(f".long.mp4{TEMP_MARK}*")), "killed while the film was being written"
    assert not (out / "long.mp4").exists()
    rerun = colorize_paths([source], str(cnn), out, workers=0)
    assert (rerun.done, rerun.frames) == (1, 192) and probe(out / "long.mp4").frame_count == 192
    assert rerun.line().startswith("done 1, skipped 0, failed 0, ") and rerun.line().endswith(" frames/s")
    assert "images/s" not in rerun.line()  # no photo in this run
    assert not list(out.glob(f".*{TEMP_MARK}*")), "the killed run's temporary file is gone"
