"""`colorize` end to end on a folder of awkward photos, plus the Python API and the command's guarantees."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.color.spaces import rgb_to_lab
from colorization.colorize import colorize_image, colorize_paths, photos
from colorization.colorize.cli import main
from colorization.colorize.model import Plan, load_model
from colorization.colorize.photos import Tally, find_photos, plan_jobs
from colorization.errors import ColorizationError, ConfigError
from colorization.files import photos as photo_files
from colorization.files.atomic import TEMP_MARK, temp_path
from colorization.files.photos import Photo, lab_to_image, photo_from_image, read_photo
from colorization.inference.base import attach_ab
from colorization.modules.build import build_module
from colorization.modules.zhang import ECCV16Module
from tests.helpers.configs import REPO
from tests.helpers.datasets import photo
from tests.helpers.entry_points import error_lines, file_hashes, without_permission_override
from tests.helpers.weights import CNN_CONFIG, RELEASE_NAMES, random_release_state, save_checkpoint, save_release_style

ORIENTATION = 0x0112
ROTATE_90_CW = 6
"""EXIF orientation 6: the stored image must be turned 90 degrees clockwise for display."""


@pytest.fixture(scope="module")
def cnn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_module(CNN_CONFIG, "lab")
    return save_checkpoint(model, tmp_path_factory.mktemp("cnn") / "cnn.ckpt")


HINT_GAIN = 50.0


@pytest.fixture(scope="module")
def siggraph17_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release-style SIGGRAPH17 file with random weights whose first convolution reads the hint
    planes `HINT_GAIN` times more strongly: random weights barely react to hints, trained ones do."""
    state = random_release_state("siggraph17")
    state["model1.0.weight"][:, 1:] *= HINT_GAIN
    directory = tmp_path_factory.mktemp("release")
    return save_release_style(state, directory, RELEASE_NAMES["siggraph17"])


def luminance(image: Image.Image) -> np.ndarray:
    """(H, W) CIE L* of an image's RGB (or gray) values, as float64."""
    values = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return rgb_to_lab(torch.from_numpy(values).permute(2, 0, 1)[None])[0, 0].double().numpy()


def make_folder(root: Path) -> dict[str, tuple[int, int]]:
    """The awkward folder: relative path -> expected output (width, height). Also writes junk."""
    root.mkdir(parents=True)
    (root / "sub").mkdir()
    Image.fromarray(photo(40, 64)).save(root / "wide.jpg", quality=95)  # RGB
    sepia = (photo(50, 30).astype(np.float32) * [1.0, 0.85, 0.65]).astype(np.uint8)
    Image.fromarray(sepia).save(root / "sepia.png")  # tinted scan, tall
    deep = (np.linspace(0, 65535, 36 * 28).reshape(36, 28)).astype(np.uint16)
    Image.fromarray(deep).save(root / "deep16.png")  # 16-bit gray
    assert Image.open(root / "deep16.png").mode.startswith("I")
    rgba = np.dstack([photo(32, 32), np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))])
    Image.fromarray(rgba, "RGBA").save(root / "alpha.png")
    rotated = Image.fromarray(photo(30, 46))  # stored 46 wide, 30 high; shown 30 wide, 46 high
    exif = rotated.getexif()
    exif[ORIENTATION] = ROTATE_90_CW
    rotated.save(root / "rotated.jpg", exif=exif.tobytes(), quality=95)
    Image.fromarray(photo(24, 40)).convert("P", palette=Image.ADAPTIVE, colors=32).save(root / "palette.gif")
    Image.fromarray(photo(34, 34)).convert("L").save(root / "sub" / "inner.png")
    (root / "notes.txt").write_text("not a photo")
    Image.fromarray(photo(40, 40)).save(root / "broken.jpg", quality=95)
    data = (root / "broken.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 3])
    return {
        "wide.png": (64, 40),
        "sepia.png": (30, 50),
        "deep16.png": (28, 36),
        "alpha.png": (32, 32),
        "rotated.png": (30, 46),
        "palette.png": (40, 24),
        "sub/inner.png": (34, 34),
    }


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "colorization.colorize", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )


@pytest.mark.slow
def test_a_folder_of_awkward_photos_end_to_end(cnn_checkpoint, tmp_path):
    expected = make_folder(tmp_path / "scans")
    out = tmp_path / "out"
    result = run_cli(str(tmp_path / "scans"), "--model", str(cnn_checkpoint), "--out", str(out), "--recursive")
    assert result.returncode == 1, result.stderr  # the truncated JPEG failed, the rest went on
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("done 7, skipped 0, failed 1 (") and "broken.jpg" in summary
    assert "broken.jpg: cannot read the image" in result.stderr

    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(expected)
    for name, size in expected.items():
        output = Image.open(out / name)
        assert output.size == size, name
        source = next((tmp_path / "scans").glob(str(Path(name).with_suffix(".*"))))
        # the output's L is the input's luminance (after EXIF rotation), within 8-bit rounding
        input_l = read_photo(source).l[0].double().numpy()
        assert np.abs(luminance(output) - input_l).max() < 1.0, name
        assert np.abs(luminance(output) - input_l).mean() < 0.3, name
    assert Image.open(out / "alpha.png").mode == "RGBA"
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "alpha.png"))[..., 3],
        np.asarray(Image.open(tmp_path / "scans" / "alpha.png"))[..., 3],
    )
    assert Image.open(out / "rotated.png").getexif().get(ORIENTATION) in (None, 1), "orientation applied once"
    colourful = np.asarray(Image.open(out / "wide.png").convert("RGB")).astype(int)
    assert np.abs(colourful[..., 0] - colourful[..., 2]).mean() > 0.5, "the model's colours reached the output"

    # a rerun writes nothing and skips everything that is done
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    again = run_cli(str(tmp_path / "scans"), "--model", str(cnn_checkpoint), "--out", str(out), "--recursive")
    assert again.stdout.strip().splitlines()[-1].startswith("done 0, skipped 7, failed 1")
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps
    # --overwrite rewrites
    time.sleep(0.01)
    forced = colorize_paths([tmp_path / "scans"], str(cnn_checkpoint), out, recursive=True, overwrite=True, workers=0)
    assert (forced.done, forced.skipped, len(forced.failed)) == (7, 0, 1)
    assert all(p.stat().st_mtime_ns > stamps[p] for p in stamps)


def test_the_python_api_keeps_size_luminance_and_alpha(cnn_checkpoint):
    image = Image.fromarray(np.dstack([photo(21, 37), np.full((21, 37), 200, np.uint8)]), "RGBA")
    colour = colorize_image(image, str(cnn_checkpoint))
    assert colour.size == (37, 21) and colour.mode == "RGBA"
    assert np.all(np.asarray(colour)[..., 3] == 200)
    assert np.abs(luminance(colour) - luminance(image)).max() < 1.0


def test_side_by_side_and_jpeg_output(cnn_checkpoint, tmp_path):
    Image.fromarray(photo(30, 40)).save(tmp_path / "one.png")
    summary = colorize_paths(
        [tmp_path / "one.png"], str(cnn_checkpoint), tmp_path / "out", format="jpg", side_by_side=True, workers=0
    )
    assert summary.done == 1
    assert Image.open(tmp_path / "out" / "one.jpg").format == "JPEG"
    sheet = Image.open(tmp_path / "out" / "one.compare.png")
    assert sheet.size == (80, 30)
    left = np.asarray(sheet.convert("RGB"))[:, :40].astype(int)
    assert np.abs(left[..., 0] - left[..., 1]).max() <= 1, "the left half is the gray input"


@pytest.mark.slow
def test_outputs_never_overwrite_inputs_and_usage_errors_exit_2(cnn_checkpoint, tmp_path, capsys):
    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    with pytest.raises(ConfigError, match="would overwrite an input photo"):
        colorize_paths([tmp_path / "a.png"], str(cnn_checkpoint), tmp_path, workers=0)
    with pytest.raises(ConfigError, match="is an input folder"):
        colorize_paths([tmp_path], str(cnn_checkpoint), tmp_path, workers=0)
    Image.fromarray(photo(20, 20)).save(tmp_path / "a.jpg")
    with pytest.raises(ConfigError, match=r"would both be written to .*a\.png"):
        colorize_paths([tmp_path], str(cnn_checkpoint), tmp_path / "out", workers=0)
    cases = [
        ([str(tmp_path / "a.png"), "--model", str(tmp_path / "nothing.ckpt")], "nothing.ckpt: file not found"),
        ([str(tmp_path / "a.png"), "--model", "no-such-release"], "neither a file nor a known release name"),
        ([str(tmp_path / "a.png"), "--model", str(tmp_path / "a.png")], "a.png: not a readable PyTorch file"),
        ([str(tmp_path / "missing.png"), "--model", str(cnn_checkpoint)], "missing.png: no such file or folder"),
        ([str(tmp_path / "a.png"), "--model", str(cnn_checkpoint), "--temperature", "0.5"], "--temperature"),
        ([str(tmp_path / "a.png"), "--model", str(cnn_checkpoint), "--batch-size", "0"], "--batch-size=0"),
    ]
    for args, message in cases:  # in process: the entry point's own exit is checked once below
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out", str(tmp_path / "out2"), "--workers", "0"])
        assert exit_info.value.code == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    result = run_cli(*cases[0][0], "--out", str(tmp_path / "out2"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nothing.ckpt'}: file not found"
    ]
    assert not (tmp_path / "out2").exists(), "nothing is written after a usage error"


def test_main_returns_the_exit_code(cnn_checkpoint, tmp_path, capsys):
    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    args = [str(tmp_path / "a.png"), "--model", str(cnn_checkpoint), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*args, "--workers", "0"]) == 0
    assert capsys.readouterr().out.startswith("done 1, skipped 0, failed 0")


def test_summary_line_names_failures():
    summary = Tally(done=3, skipped=2, failed=[("x.jpg", "x.jpg: truncated")], seconds=2.0)
    assert summary.line() == "done 3, skipped 2, failed 1 (x.jpg), 2.0 s, 1.50 images/s"
    assert summary.exit_code == 1 and Tally(done=1).exit_code == 0


@pytest.mark.slow
def test_a_run_killed_mid_folder_leaves_no_partial_file_and_a_rerun_completes(cnn_checkpoint, tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    count = 40
    for i in range(count):
        Image.fromarray(photo(96, 128)).save(scans / f"photo{i:02d}.png")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "colorization.colorize", str(scans), "--model", str(cnn_checkpoint)]
    command += ["--out", str(out), "--batch-size", "1", "--workers", "0", "--quiet"]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 3:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(out.glob("*.png"))
    assert 3 <= len(finished) < count, "killed mid-folder"
    for path in finished:  # every file under a final name is a whole image
        with Image.open(path) as image:
            image.load()
    rerun = colorize_paths([scans], str(cnn_checkpoint), out, workers=0)
    assert rerun.skipped == len(finished) and rerun.done == count - len(finished) and not rerun.failed
    assert len(list(out.glob("*.png"))) == count
    assert not list(out.glob(f".*{TEMP_MARK}*")), "temporary files of the killed run are gone"


@pytest.mark.slow
def test_hints_change_the_colour_near_the_point_and_little_elsewhere(siggraph17_file, tmp_path):
    image = Image.fromarray(photo(128, 128)).convert("L")
    plain = np.asarray(colorize_image(image, str(siggraph17_file)).convert("RGB"), dtype=np.float32)
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps([{"x": 100, "y": 30, "color": "#00ff00"}]))
    hinted = np.asarray(colorize_image(image, str(siggraph17_file), hints=hints).convert("RGB"), dtype=np.float32)
    change = np.abs(hinted - plain).sum(axis=2)
    rows, cols = np.mgrid[:128, :128]
    distance = np.hypot(rows - 30, cols - 100)
    near, far = change[distance < 6].mean(), change[distance > 40].mean()
    print(f"mean |change| near the hint {near:.2f}, far from it {far:.2f} (sum over RGB, 0..255)")
    assert near > 4.0 and near > 5 * far
    assert np.hypot(*np.subtract(np.unravel_index(change.argmax(), change.shape), (30, 100))) < 8


def test_hints_are_refused_for_models_without_them_and_for_many_photos(cnn_checkpoint, siggraph17_file, tmp_path):
    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    Image.fromarray(photo(20, 20)).save(tmp_path / "b.png")
    hints = tmp_path / "hints.csv"
    hints.write_text("x,y,color\n5,5,#ff0000\n")
    with pytest.raises(ConfigError, match="takes no hints"):
        colorize_paths([tmp_path / "a.png"], str(cnn_checkpoint), tmp_path / "out", hints=hints, workers=0)
    with pytest.raises(ConfigError, match="apply to one photo, but 2"):
        colorize_paths([tmp_path], str(siggraph17_file), tmp_path / "out", hints=hints, workers=0)
    hints.write_text("x,y,color\n50,5,#ff0000\n")
    with pytest.raises(ColorizationError, match=r"outside the 20x20 image"):
        colorize_paths([tmp_path / "a.png"], str(siggraph17_file), tmp_path / "out", hints=hints, workers=0)
    hints.write_text("x,y,color\n5,5,red\n")
    with pytest.raises(ColorizationError, match=r"hints.csv: hint 1 .* expected color '#rrggbb' or ab"):
        colorize_paths([tmp_path / "a.png"], str(siggraph17_file), tmp_path / "out", hints=hints, workers=0)


@pytest.mark.slow
def test_temperature_reaches_the_annealed_mean_and_is_restored(tmp_path):
    # random weights give nearly flat logits (std 0.04): sharpen them so there is a distribution to anneal
    state = random_release_state("eccv16")
    state["model8.6.weight"] *= 100
    state["model8.6.bias"] *= 100
    path = save_release_style(state, tmp_path, RELEASE_NAMES["eccv16"])
    model = load_model(path)
    image = Image.fromarray(photo(64, 64)).convert("L")
    l = photo_from_image(image).l[None]
    outputs = {}
    for temperature in (1.0, 0.38, 0.05):
        outputs[temperature] = np.asarray(colorize_image(image, model, temperature=temperature))
        configured = ECCV16Module(weights=str(path), temperature=temperature).eval()
        expected = np.asarray(lab_to_image(configured.colorize_full(l)))
        assert np.abs(outputs[temperature].astype(int) - expected).max() <= 1, temperature
    assert not np.array_equal(outputs[1.0], outputs[0.05])
    assert model.temperature == 1.0, "the release's own decoding is back after the call"
    with pytest.raises(ConfigError, match=r"--temperature=0.0: expected a number > 0"):
        colorize_image(image, model, temperature=0.0)


@pytest.mark.slow
def test_temperature_switches_siggraph17_to_its_classification_decoder(siggraph17_file):
    model = load_model(siggraph17_file)
    image = Image.fromarray(photo(32, 32)).convert("L")
    regression = np.asarray(colorize_image(image, model))
    annealed = np.asarray(colorize_image(image, model, temperature=0.38))
    assert not np.array_equal(regression, annealed)
    assert model.decode == "regression"
    np.testing.assert_array_equal(np.asarray(colorize_image(image, model)), regression)


def test_a_model_runs_at_the_size_it_was_trained_at_unless_told_otherwise(tmp_path):
    torch.manual_seed(0)
    model = build_module(CNN_CONFIG, "lab")
    model.trained_size = 32  # what training on 32-px crops records (tests/test_train.py checks that)
    model = load_model(str(save_checkpoint(model, tmp_path / "cnn32.ckpt")))
    assert model.trained_size == 32
    l = torch.rand(1, 96, 64) * 100
    assert Plan.of(model).shrink(l).shape == (1, 32, 21), "longer side at the training size, aspect kept"
    assert Plan.of(model, 48).shrink(l).shape == (1, 48, 32), "--size overrides it"
    assert Plan.of(model).shrink(l[:, :20, :16]).shape == (1, 20, 16), "never enlarged"
    zhang = ECCV16Module()
    zhang.trained_size = 64
    assert Plan.of(zhang).shrink(l).shape[-2:] == (256, 256), "a fixed working size stays the release's"
    Image.fromarray(photo(96, 64)).save(tmp_path / "p.png")
    assert colorize_image(Image.open(tmp_path / "p.png"), model).size == (64, 96)


# --- the pipeline: every photo counted, tiny and huge photos alone, strips (issue 23) ------------------


@pytest.fixture(scope="module")
def valid_cnn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study CNN with valid padding, as the default config trains it: no side under 5 pixels."""
    torch.manual_seed(0)
    config = {**CNN_CONFIG, "net": {**CNN_CONFIG["net"], "padding": "valid"}}
    return save_checkpoint(build_module(config, "lab"), tmp_path_factory.mktemp("valid") / "cnn-valid.ckpt")


def write_photos(folder: Path, sizes: dict[str, tuple[int, int]]) -> list[Path]:
    """Gray-ish photos named name -> (height, width) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (height, width) in sizes.items():
        Image.fromarray(photo(height, width)).save(folder / name)
    return [folder / name for name in sizes]


@pytest.mark.parametrize("error", [ValueError("an encoder bug"), MemoryError()], ids=["ValueError", "MemoryError"])
def test_any_error_while_writing_one_photo_fails_it_alone(error, cnn_checkpoint, tmp_path, monkeypatch):
    write_photos(tmp_path / "in", {"a.png": (20, 24), "b.png": (20, 24), "c.png": (20, 24)})
    real_save = photos.save_image_atomic

    def save(image, path, *args, **kwargs):
        if path.name == "b.png":
            raise error
        return real_save(image, path, *args, **kwargs)

    monkeypatch.setattr(photos, "save_image_atomic", save)
    tally = colorize_paths([tmp_path / "in"], str(cnn_checkpoint), tmp_path / "out", workers=0, batch_size=1)
    assert (tally.done, tally.skipped) == (2, 0)
    assert [path for path, _ in tally.failed] == [str(tmp_path / "in" / "b.png")]
    assert f"cannot write ({type(error).__name__}" in tally.failed[0][1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_a_jpeg_that_cannot_hold_a_photos_exif_fails_that_photo_alone(cnn_checkpoint, tmp_path):
    write_photos(tmp_path / "in", {"a.png": (20, 24), "c.png": (20, 24)})
    exif = Image.Exif()
    exif[0x9286] = "x" * 100_000  # a user comment of 100 KB: more than a JPEG's EXIF segment holds (64 KB)
    Image.fromarray(photo(20, 24)).save(tmp_path / "in" / "b.png", exif=exif.tobytes())
    out = tmp_path / "out"
    tally = colorize_paths([tmp_path / "in"], str(cnn_checkpoint), out, format="jpg", workers=0, batch_size=1)
    assert (tally.done, tally.exit_code) == (2, 1)
    assert tally.failed == [
        (str(tmp_path / "in" / "b.png"), f"{out / 'b.jpg'}: cannot write (ValueError: EXIF data is too long)")
    ]


def test_a_writer_thread_that_dies_stops_the_run_with_exit_1(cnn_checkpoint, tmp_path, monkeypatch, capsys):
    write_photos(tmp_path / "in", {"a.png": (20, 24), "b.png": (20, 24)})

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # not an Exception: what no per-photo handler catches

    monkeypatch.setattr(photos, "finish", killed)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "in"), "--model", str(cnn_checkpoint), "--out", str(tmp_path / "out"), "--quiet"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: a writer thread stopped (KeyboardInterrupt); the photos written so far are kept"
    ]


def test_a_decoding_process_that_dies_stops_the_run_with_exit_1(cnn_checkpoint, tmp_path, monkeypatch, capsys):
    write_photos(tmp_path / "in", {"a.png": (20, 24), "b.png": (20, 24)})
    monkeypatch.setattr(photos.PhotoDataset, "__getitem__", lambda self, position: os._exit(9))  # as the OOM killer
    args = [str(tmp_path / "in"), "--model", str(cnn_checkpoint), "--out", str(tmp_path / "out"), "--workers", "1"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--quiet"])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: a decoding process stopped (RuntimeError: DataLoader worker")
    assert lines[0].endswith("; the photos written so far are kept")


def test_a_batch_the_network_cannot_run_fails_its_photos_alone(cnn_checkpoint, tmp_path, monkeypatch):
    write_photos(tmp_path / "in", {"big.png": (40, 50), "small.png": (20, 24), "small2.png": (20, 24)})
    real_run = photos.Runner.__call__

    def run(self, small, hints=None):
        if small.shape[-1] == 50:
            raise MemoryError("no room for the big photo")
        return real_run(self, small, hints)

    monkeypatch.setattr(photos.Runner, "__call__", run)
    tally = colorize_paths([tmp_path / "in"], str(cnn_checkpoint), tmp_path / "out", workers=0)
    assert tally.done == 2
    assert tally.failed == [
        (
            str(tmp_path / "in" / "big.png"),
            f"{tmp_path / 'in' / 'big.png'}: cannot colorize (MemoryError: no room for the big photo)",
        )
    ]


def test_a_photo_smaller_than_the_network_takes_is_colorized_at_its_smallest_size(valid_cnn_checkpoint, tmp_path):
    sizes = {"dot.png": (1, 1), "strip.png": (2, 30), "a.png": (20, 24), "b.png": (31, 17)}
    write_photos(tmp_path / "in", sizes)
    model = load_model(str(valid_cnn_checkpoint))
    tally = colorize_paths([tmp_path / "in"], model, tmp_path / "out", workers=0)
    assert (tally.done, tally.failed) == (4, [])
    for name, (height, width) in sizes.items():
        assert Image.open(tmp_path / "out" / name).size == (width, height), name
    assert Plan.of(model).shrink(torch.zeros(1, 1, 1)).shape == (1, 5, 5), "the network's smallest input"
    with pytest.raises(ConfigError, match=r"--size=3: expected an integer >= 5 \(the smallest side"):
        colorize_paths([tmp_path / "in"], model, tmp_path / "out2", size=3, workers=0)


def test_a_photo_over_max_megapixels_fails_alone_before_it_is_decoded(cnn_checkpoint, tmp_path, capsys):
    write_photos(tmp_path / "in", {"big.png": (40, 40), "small.png": (20, 24)})
    args = [str(tmp_path / "in"), "--model", str(cnn_checkpoint), "--out", str(tmp_path / "out"), "--workers", "0"]
    assert main([*args, "--max-megapixels", "0.001", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith(f"done 1, skipped 0, failed 1 ({tmp_path / 'in' / 'big.png'})")
    assert captured.err.strip().splitlines() == [
        f"failed: {tmp_path / 'in' / 'big.png'}: 40x40 is 0.0 megapixels, more than the 0.001 colorize takes "
        "(--max-megapixels)"
    ]
    assert main([*args, "--max-megapixels", "0.002", "--quiet"]) == 0, "raising the limit colorizes it"
    with pytest.raises(
        ConfigError, match=r"--size=1100: a 1100x1100 working size is 1.21 megapixels, more than the 1 "
    ):
        colorize_paths([tmp_path / "in"], ECCV16Module(), tmp_path / "out", size=1100, max_megapixels=1)


def test_full_resolution_strips_give_the_whole_photos_pixels(tmp_path, monkeypatch):
    torch.manual_seed(0)
    l, ab = torch.rand(1, 37, 53) * 100, torch.randn(2, 9, 11) * 40
    alpha = np.arange(37 * 53, dtype=np.uint8).reshape(37, 53)
    whole = np.asarray(lab_to_image(attach_ab(l[None], ab[None]), alpha))
    for strip_pixels in (1, 53, 3 * 53 + 7, 10**6):  # one row, rows, rows and a bit, the whole photo
        strips = np.asarray(photos.finish(Photo(l, alpha), ab, torch.device("cpu"), strip_pixels=strip_pixels))
        np.testing.assert_array_equal(strips, whole, err_msg=f"strip_pixels={strip_pixels}")
    Image.fromarray(photo(37, 53)).save(tmp_path / "rgb.png")
    Image.fromarray(photo(37, 53)).convert("L").save(tmp_path / "gray.png")
    whole_l = {name: read_photo(tmp_path / name).l for name in ("rgb.png", "gray.png")}
    monkeypatch.setattr(photo_files, "STRIP_PIXELS", 2 * 53 + 1)
    for name, expected in whole_l.items():  # the same but for float rounding (a code of 8-bit gray is 0.4 L)
        torch.testing.assert_close(read_photo(tmp_path / name).l, expected, rtol=0, atol=1e-4, msg=name)


# --- two runs into one --out, binary hints files (issue 23) --------------------------------------------


def run_colorize(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "colorization.colorize", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.slow
def test_a_second_run_into_the_same_out_keeps_the_first_runs_temporaries(cnn_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    first_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # still writing
    killed_run = subprocess.Popen([sys.executable, "-c", "pass"])
    killed_run.wait()
    try:
        live = temp_path(out / "other.png", str(first_run.pid))
        dead = temp_path(out / "sub" / "gone.png", str(killed_run.pid))
        dead.parent.mkdir()
        live.write_bytes(b"half of a photo the first run is writing")
        dead.write_bytes(b"half of a photo a killed run left")
        Image.fromarray(photo(24, 32)).save(tmp_path / "photo.png")
        result = run_colorize([str(tmp_path / "photo.png"), "--model", str(cnn_checkpoint), "--out", str(out)], REPO)
        assert result.returncode == 0, result.stderr[-3000:]
        assert live.read_bytes() == b"half of a photo the first run is writing", "a live run's file is its own"
        assert not dead.exists(), "a dead run's remains are removed"
        assert (out / "photo.png").is_file()
    finally:
        first_run.kill()
        first_run.wait()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_a_binary_hints_file_is_one_error_line(suffix, siggraph17_file, tmp_path):
    hints = tmp_path / f"hints{suffix}"
    hints.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80")
    Image.fromarray(photo(24, 32)).save(tmp_path / "photo.png")
    args = [str(tmp_path / "photo.png"), "--model", str(siggraph17_file), "--hints", str(hints)]
    result = run_colorize([*args, "--out", str(tmp_path / "out")], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and f"{hints}: not a text file" in lines[0], result.stderr[-3000:]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"x": 10, "y": 10, "ab": [NaN, 0]}]', r"hint 1 .*: a and b must be finite numbers, not nan"),
        ('[{"x": 10, "y": 10, "ab": [0, "Infinity"]}]', r"hint 1 .*: a and b must be finite numbers, not 'Infinity'"),
        ('[{"x": 1, "y": 1, "ab": [0, 0]}, {"x": 40, "y": 1, "ab": [0, 0]}]', r"hint 2 .*: \(x, y\) outside the 32x24"),
    ],
)
def test_bad_hints_are_one_error_line_naming_the_file_and_the_hint(text, message, siggraph17_file, tmp_path):
    hints = tmp_path / "hints.json"
    hints.write_text(text)
    Image.fromarray(photo(24, 32)).save(tmp_path / "photo.png")
    args = [str(tmp_path / "photo.png"), "--model", str(siggraph17_file), "--hints", str(hints)]
    result = run_colorize([*args, "--out", str(tmp_path / "out")], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = error_lines(result)
    assert len(lines) == 1 and re.match(rf"error: {re.escape(str(hints))}: {message}", lines[0]), result.stderr
    assert not list((tmp_path / "out").glob("*.png")), "nothing is colorized"


def test_the_python_api_refuses_non_finite_hint_records(siggraph17_file):
    image = Image.fromarray(photo(24, 32)).convert("L")
    for record in ({"x": 1, "y": 1, "ab": [float("nan"), 0]}, {"x": float("inf"), "y": 1, "color": "#ff0000"}):
        with pytest.raises(ColorizationError, match=r"^hints: hint 1 .* must be finite numbers"):
            colorize_image(image, str(siggraph17_file), hints=[record])


# --- usage errors found up front, folder trees with links (reliability issue, item 12) ------------------


def test_a_named_file_that_is_no_photo_or_an_unwritable_out_is_one_usage_error(cnn_checkpoint, tmp_path, capsys):
    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "taken.png").write_text("a file where the output folder should be")
    before = file_hashes(tmp_path)
    cases = [
        (
            [str(tmp_path / "notes.txt")],
            rf"{re.escape(str(tmp_path / 'notes.txt'))}: not a file this reads; expected one",
        ),
        (
            [str(tmp_path / "a.png"), "--out", str(tmp_path / "taken.png")],
            rf"--out='{re.escape(str(tmp_path / 'taken.png'))}' is not writable \(.*taken\.png is not a directory\)",
        ),
        (
            [str(tmp_path / "a.png"), "--out", str(tmp_path / "taken.png" / "sub")],
            r"--out='.*sub' is not writable \(.*taken\.png is not a directory\)",
        ),
    ]
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--model", str(cnn_checkpoint), "--workers", "0"])
        assert exit_info.value.code == 2, args
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and re.fullmatch(rf"error: {message}.*", lines[0]), lines
        assert "done" not in captured.out
    assert file_hashes(tmp_path) == before, "nothing written, nothing changed"


@pytest.mark.slow
def test_a_read_only_out_is_one_usage_error_before_any_photo(cnn_checkpoint, tmp_path):
    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "colorization.colorize", str(tmp_path / "a.png"), "--model", str(cnn_checkpoint)]
            + ["--out", str(out)],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            timeout=300,
            preexec_fn=without_permission_override,
        )
    finally:
        out.chmod(0o755)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert error_lines(result) == [
        f"error: --out={str(out)!r} is not writable (Permission denied); choose another directory"
    ], result.stderr
    assert "failed" not in result.stderr + result.stdout and not list(out.iterdir())


def test_a_name_clash_suggests_format_same_only_where_it_parts_the_photos(tmp_path):
    def clash(names: list[str], format: str = "png", side_by_side: bool = False) -> str:
        photos = [(tmp_path / name, Path(name)) for name in names]
        with pytest.raises(ConfigError, match="would both be written to") as error:
            plan_jobs(photos, tmp_path / "out", format, side_by_side)
        return str(error.value)

    assert clash(["a.png", "a.jpg"]).endswith("; use --format same or rename one")
    assert clash(["a.png", "a.gif"]).endswith("; rename one"), "--format same writes a GIF as PNG too"
    assert clash(["a.gif", "a.png"], format="same").endswith("; rename one")
    assert clash(["a.png", "a.jpg"], side_by_side=True).endswith("; rename one"), "their sheets clash anyway"
    assert clash(["a.jpeg", "a.jpg"], format="jpg").endswith("; use --format same or rename one")


def test_recursive_folders_are_walked_once_each_without_following_a_loop(tmp_path, capsys):
    scans, elsewhere = tmp_path / "scans", tmp_path / "elsewhere"
    (scans / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for path in (scans / "a.png", scans / "sub" / "b.png", elsewhere / "c.png"):
        Image.fromarray(photo(8, 8)).save(path)
    (scans / "sub" / "up").symlink_to("..")  # a loop
    (scans / "again").symlink_to("sub")  # a second name for a folder listed anyway
    (scans / "alias.png").symlink_to("a.png")  # a second name for a photo
    (scans / "more").symlink_to(elsewhere)  # a folder only a link reaches
    found = find_photos([scans], recursive=True)
    assert [relative.as_posix() for _, relative in found] == ["a.png", "more/c.png", "sub/b.png"]
    assert [source for source, _ in found] == [scans / "a.png", elsewhere / "c.png", scans / "sub" / "b.png"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"{scans}: skipped 3 link(s) to a folder or file listed already, or to a folder holding this one (a loop)"
    ]


def test_more_workers_than_cores_are_capped_at_the_cores_in_one_line(cnn_checkpoint, tmp_path, capsys, monkeypatch):
    import colorization.colorize.photos as photos

    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    started = []

    class CountingLoader(photos.DataLoader):
        def __init__(self, *args, **kwargs) -> None:
            started.append(kwargs["num_workers"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(photos, "DataLoader", CountingLoader)
    code = main(
        [str(tmp_path / "a.png"), "--model", str(cnn_checkpoint), "--out", str(tmp_path / "out"), "--workers", "100"]
    )
    captured = capsys.readouterr()
    assert code == 0 and (tmp_path / "out" / "a.png").is_file(), captured.err
    assert started == [1], "one decoding process on one core, not 100"
    assert [line for line in captured.err.splitlines() if "--workers" in line] == [
        "--workers 100: using 1, the CPU cores this process may run on"
    ]


@pytest.mark.slow
def test_a_raw_pickle_or_a_folder_as_model_is_the_only_line_printed(tmp_path):
    import pickle

    Image.fromarray(photo(20, 20)).save(tmp_path / "a.png")
    (tmp_path / "raw.pth").write_bytes(pickle.dumps({"weight": [1.0]}, protocol=4))
    (tmp_path / "models.onnx").mkdir()
    cases = {
        "raw.pth": f"error: {tmp_path / 'raw.pth'}: not a readable PyTorch file (UnpicklingError)",
        "models.onnx": f"error: {tmp_path / 'models.onnx'}: a folder; expected an .onnx file "
        "(python -m colorization.export writes one)",
    }
    for name, line in cases.items():
        result = run_colorize([str(tmp_path / "a.png"), "--model", str(tmp_path / name), "--quiet"], tmp_path)
        assert result.returncode == 2 and result.stderr.splitlines() == [line], result.stderr
        assert not (tmp_path / "colorized").exists()


@pytest.mark.parametrize(("format", "suffix"), [("png", ".png"), ("jpg", ".jpg")])
def test_a_photos_icc_profile_is_copied_to_its_output(format, suffix, cnn_checkpoint, tmp_path):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(photo(24, 32)).save(tmp_path / "scan.jpg", quality=95, icc_profile=profile)
    Image.fromarray(photo(24, 32)).save(tmp_path / "plain.png")
    tally = colorize_paths([tmp_path], str(cnn_checkpoint), tmp_path / "out", format=format, workers=0)
    assert tally.done == 2 and not tally.failed, tally.line()
    with Image.open(tmp_path / "out" / f"scan{suffix}") as output:
        assert output.info.get("icc_profile") == profile
    with Image.open(tmp_path / "out" / f"plain{suffix}") as output:
        assert not output.info.get("icc_profile"), "no profile is invented for a photo without one"


@pytest.mark.slow
def test_a_recursive_glob_does_not_follow_a_loop(tmp_path):
    scans, elsewhere = tmp_path / "scans", tmp_path / "elsewhere"
    (scans / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for path in (scans / "a.png", scans / "sub" / "b.png", elsewhere / "c.png"):
        Image.fromarray(photo(8, 8)).save(path)
    (scans / "sub" / "up").symlink_to("..")  # glob's own ** went round this loop without end
    (scans / "again").symlink_to("sub")
    (scans / "more").symlink_to(elsewhere)
    show = "import sys; from colorization.colorize.photos import find_photos; "
    show += "print([r.as_posix() for _, r in find_photos(sys.argv[1:], recursive=True)])"
    for pattern, expected in (("**/*.png", ["a.png", "c.png", "b.png"]), ("**", ["a.png", "more/c.png", "sub/b.png"])):
        result = subprocess.run(
            [sys.executable, "-c", show, f"{scans}/{pattern}"], capture_output=True, text=True, cwd=REPO, timeout=60
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip() == repr(expected), pattern
        skipped = f"{scans}: skipped 2 link(s) to a folder or file listed already, or to a folder holding this one"
        assert result.stderr.strip() == f"{skipped} (a loop)"
