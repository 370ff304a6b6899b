"""``evaluate.py data=video``: a folder of colour films scored end to end, every number checked by computing it
again from the films it wrote, and the folder's errors in one line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from colorization.color.spaces import rgb_to_lab
from colorization.errors import ConfigError, DataError
from colorization.jobs.evaluate import evaluate
from colorization.jobs.film_scoring import gray_rgb
from colorization.jobs.scoring import GRAY, GROUND_TRUTH
from colorization.jobs.train import train
from colorization.metrics import image as M
from colorization.metrics.temporal import CDC, WarpingError
from colorization.modules.build import build_module
from colorization.video.io import open_film
from tests.helpers.clips import film_clip, write_colour_film
from tests.helpers.configs import compose_config, tiny_overrides
from tests.helpers.weights import CNN_CONFIG

ROWS = [GRAY, "cnn", "cnn (deflicker none)", GROUND_TRUTH]
MAX_FRAMES, STRIDE = 10, 2


@pytest.fixture(scope="module")
def cnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A train.py-style checkpoint of a tiny study CNN with random weights."""
    torch.manual_seed(0)
    model = build_module(CNN_CONFIG, "lab")
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    path = tmp_path_factory.mktemp("cnn") / "cnn.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two colour films of different sizes, one in a sub-folder and longer than `MAX_FRAMES`, and a text file."""
    root = tmp_path_factory.mktemp("films")
    write_colour_film(root / "pan.mp4", film_clip(12).rgb, audio="aac")
    (root / "more").mkdir()
    write_colour_film(root / "more" / "coffee.mkv", film_clip(7, 48, 64, photo="coffee").rgb)
    (root / "notes.txt").write_text("not a film")
    return root


def video_config(root: Path, output_dir: Path, *overrides: str):
    return compose_config(
        "evaluate",
        [f"paths.root_dir={output_dir.parent}", f"paths.output_dir={output_dir}", "device=cpu", "data=video"]
        + [f"data.root={root}", *overrides],
    )


def decoded(path: Path, max_frames: int | None = None) -> list:
    with open_film(path, max_frames=max_frames) as film:
        return list(film.frames(rgb=True))


def lab(rgb: np.ndarray) -> torch.Tensor:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0)


def test_a_folder_of_films_is_scored_frame_by_frame_and_over_time(cnn, films, tmp_path):
    out = tmp_path / "eval"
    overrides = [f"checkpoints={{cnn: {cnn}}}", f"data.max_frames={MAX_FRAMES}", f"data.frame_stride={STRIDE}"]
    evaluate(video_config(films, out, *overrides))
    with (out / "results.csv").open() as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert list(rows) == ROWS
    first = rows[GRAY]
    assert (first["films"], first["images"], first["image_size"]) == ("2", "9", "mixed")  # 5 + 4 frames
    assert list(first)[-3:] == ["cdc", "warp_error", "images_per_s"]
    for row in rows.values():
        assert all(row[key] not in ("", "nan") for key in ("cdc", "warp_error", "mse", "ciede2000")), row
    assert rows["cnn"]["checkpoint"] and float(rows["cnn"]["images_per_s"]) > 0
    assert float(rows[GROUND_TRUTH]["mse"]) == 0 and float(rows[GROUND_TRUTH]["cie76"]) == 0
    assert math.isinf(float(rows[GROUND_TRUTH]["psnr"]))

    # the films it scored are the ones colorize writes, kept in the run directory
    outputs = {"cnn": out / "films" / "cnn" / "flow", "cnn (deflicker none)": out / "films" / "cnn" / "none"}
    for folder in outputs.values():
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.mp4")) == ["more/coffee.mp4", "pan.mp4"]

    # every number again, by hand, from the films on disk
    by_row = {name: {"cdc": [], "warp_error": []} for name in ROWS}
    gray_cie76, truth_chroma, pixels = 0.0, 0.0, 0
    for source, frames in (("pan.mp4", 12), ("more/coffee.mkv", 7)):
        truth = decoded(films / source, MAX_FRAMES)
        assert len(truth) == min(frames, MAX_FRAMES)
        with open_film(films / source) as film:
            spec = film.info.ycbcr
        made = {row: decoded((folder / source).with_suffix(".mp4")) for row, folder in outputs.items()}
        shown = {
            GRAY: [gray_rgb(frame.y, spec) for frame in truth],
            **{row: [frame.rgb for frame in colorized] for row, colorized in made.items()},
            GROUND_TRUTH: [frame.rgb for frame in truth],
        }
        for row, rgbs in shown.items():
            cdc, warping = CDC(), WarpingError()
            for frame, rgb in zip(truth, rgbs, strict=True):
                cdc.update(rgb)
                warping.update(rgb, frame.y)  # warped with the motion of the gray input
            by_row[row]["cdc"].append(cdc.compute())
            by_row[row]["warp_error"].append(warping.compute())
        for frame in truth[::STRIDE]:
            target = lab(frame.rgb)
            gray_cie76 += float(M.delta_e_cie76(lab(gray_rgb(frame.y, spec)), target).double().sum())
            truth_chroma += float(target[:, 1:].norm(dim=1).double().sum())
            pixels += target[0, 0].numel()
    for row in ROWS:
        for key in ("cdc", "warp_error"):
            assert float(rows[row][key]) == pytest.approx(np.mean(by_row[row][key]), rel=1e-6), (row, key)
    assert float(rows[GRAY]["cie76"]) == pytest.approx(gray_cie76 / pixels, rel=1e-5)
    # a gray film's colour error is the colour it lacks, the ground truth's chroma (and a little L: Y' is not L*)
    assert float(rows[GRAY]["cie76"]) == pytest.approx(truth_chroma / pixels, rel=0.05)
    assert (out / "comparison.jpg").is_file()
    assert "| CDC ↓ | E_warp ↓ | frames/s |" in (out / "results.md").read_text()


def test_the_folder_and_its_films_are_checked_before_any_model_runs(cnn, films, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    write_colour_film(short / "blink.mp4", film_clip(3).rgb)
    checkpoint = f"checkpoints={{cnn: {cnn}}}"
    cases = [
        (video_config(tmp_path / "nothing", tmp_path / "a", checkpoint), DataError, "is not a folder"),
        (
            video_config(tmp_path / "short", tmp_path / "b", checkpoint),
            DataError,
            r"blink.mp4: 3 frames; .* at least 5",
        ),
        (video_config(films, tmp_path / "c", checkpoint, "data.max_frames=4"), ConfigError, "data.max_frames=4"),
        (video_config(films, tmp_path / "d", checkpoint, "crop_size=32"), ConfigError, "crop_size and fid.weights"),
        (video_config(films / "more" / "..", tmp_path / "e", checkpoint, "data.frame_stride=0"), ConfigError, "stride"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((video_config(tmp_path / "empty", tmp_path / "f", checkpoint), DataError, "no films in it"))
    for cfg, error, message in cases:
        with pytest.raises(error, match=message):
            evaluate(cfg)
    assert not any((tmp_path / name / "films").exists() for name in "abcdef")


def test_training_on_films_is_refused_in_one_line(films, tmp_path):
    cfg = compose_config("train", [*tiny_overrides(None, tmp_path / "run"), "data=video", f"data.root={films}"])
    with pytest.raises(ConfigError, match="data=video is a folder of films for evaluate.py"):
        train(cfg)
