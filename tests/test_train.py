"""train.py end to end on the tiny photo set: outputs, learning, errors. Resuming is tested in test_resume.py,
multiruns in test_sweeps.py."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from colorization.errors import ConfigError, DataError
from colorization.inference.loading import load_colorizer
from colorization.jobs.sheets import HEADER_HEIGHT
from colorization.jobs.train import train
from tests.helpers.configs import REPO, TINY_SAMPLE, compose_config, tiny_overrides
from tests.helpers.entry_points import cli_overrides, run_script

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def read_metrics_csv(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def column(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(row[key]) for row in rows if row.get(key)]


@pytest.mark.slow
def test_training_writes_checkpoints_metrics_and_sample_sheets_and_learns(train_config, tmp_path: Path):
    run = tmp_path / "run"
    cfg = train_config("trainer.max_epochs=4", "data.batch_size=4", run_dir=run)
    metrics = train(cfg)
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints and any(name.startswith("best_epoch") for name in checkpoints)
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_{e:03d}.png" for e in range(4)]
    saved = json.loads((run / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    assert {"val/mse", "val/cie76", "test/mse", "test/cie76", "train/loss_epoch"} <= set(saved)
    rows = read_metrics_csv(run)
    losses = column(rows, "train/loss_epoch")
    assert len(losses) == 4 and losses[-1] < losses[0], f"training loss did not decrease: {losses}"
    assert len(column(rows, "val/cie76")) == 4 and len(column(rows, "test/cie76")) == 1

    from PIL import Image

    sheet = Image.open(run / "samples" / "epoch_003.png")
    crop = TINY_SAMPLE["data.crop_size"]
    assert sheet.size == (3 * crop, sheet.size[1]) and (sheet.size[1] - HEADER_HEIGHT) % crop == 0
    # the name strip above the columns: dark text on white, the pictures below it
    strip = np.asarray(sheet)[:HEADER_HEIGHT]
    assert (strip == 255).mean() > 0.5 and (strip < 128).any()

    model = load_colorizer(run / "checkpoints" / "last.ckpt")
    l = torch.rand(2, 1, crop, crop) * 100
    assert model.colorize(l).shape == (2, 3, crop, crop)
    assert not model.training
    assert model.trained_size == crop, "the checkpoint records the size the model was trained at"


@pytest.mark.slow
def test_hls_with_model2_trains(train_config):
    metrics = train(train_config("colorspace=hls", "model=model2"))
    assert torch.isfinite(torch.tensor(metrics["test/cie76"]))


@pytest.mark.slow
def test_kaggle_layout_trains(kaggle_root: Path, tmp_path: Path):
    data = [
        "data=kaggle",
        f"data.root={kaggle_root}",
        "data.crop_size=16",
        "data.batch_size=4",
        "data.val_fraction=0.2",
        "data.num_workers=0",
        "data.pin_memory=false",
        "data.persistent_workers=false",
    ]
    metrics = train(compose_config("train", tiny_overrides(None, tmp_path / "run") + data))
    assert {"val/cie76", "test/cie76"} <= set(metrics)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["trainer=gpu"], ConfigError, "needs a CUDA GPU"),
        (["++model.net.stride=9"], ConfigError, "model.net.stride=9 is out of range"),
        (["colorspace.name=xyz"], ConfigError, "colorspace.name='xyz' is unknown"),
    ],
)
def test_bad_input_fails_before_training(train_config, tmp_path: Path, overrides, error, message):
    with pytest.raises(error, match=message):
        train(train_config(*overrides))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_kaggle_root_fails_before_training(tmp_path: Path):
    cfg = compose_config(
        "train", [*tiny_overrides(None, tmp_path / "run"), "data=kaggle", "data.root=/nonexistent/kaggle"]
    )
    with pytest.raises(DataError, match="/nonexistent/kaggle: data directory not found"):
        train(cfg)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trainer=gpu"], "error: trainer.accelerator='gpu' needs a CUDA GPU"),
        (["data=kaggle", "data.root=/nonexistent"], "error: /nonexistent: data directory not found"),
    ],
)
def test_cli_reports_user_errors_in_one_line_with_exit_code_2(sample_root: Path, tmp_path: Path, args, message):
    sample = None if "data=kaggle" in args else sample_root
    result = run_script("train.py", [*cli_overrides(sample, tmp_path), *args], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].startswith(message), result.stderr


@pytest.mark.slow
def test_headline_gpu_command_says_no_gpu_here(tmp_path: Path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the headline command would train")
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            "model=pix2pix",
            "trainer=gpu",
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: trainer.accelerator='gpu' needs a CUDA GPU")
