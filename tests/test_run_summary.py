"""What a person sees after `make train`: the summary block, the gray baseline, the honest sentence,
run directory names, and nothing else on the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from colorization.jobs.run_dirs import remove_unstarted_run_dir, run_name
from colorization.jobs.train_report import (
    BUILTIN_PHOTOS_ADVICE,
    RunSummary,
    SavedCheckpoints,
    Score,
    checkpoint_epoch,
    format_summary,
    gray_cie76,
    verdict,
)
from tests.helpers.configs import REPO, TINY_SAMPLE

LINE_BUDGET = 60
"""Lines a default `make train` may print on the tiny settings (model summary and tables included)."""


def test_gray_cie76_is_the_mean_chroma_of_the_truth():
    l = torch.rand(3, 1, 4, 5) * 100
    ab = torch.randn(3, 2, 4, 5) * 30
    loader = [{"l": l[:2], "ab": ab[:2]}, {"l": l[2:], "ab": ab[2:]}]
    value, images = gray_cie76(loader)
    assert images == 3
    assert value == pytest.approx(torch.hypot(ab[:, 0], ab[:, 1]).double().mean().item(), rel=1e-6)


def test_checkpoint_epoch_reads_the_file_name():
    assert checkpoint_epoch("run/checkpoints/best_epoch003.ckpt") == 3
    assert checkpoint_epoch("last.ckpt") is None


def summary_with(test_model: float, test_gray: float, builtin: bool = True) -> RunSummary:
    run = Path("/runs/r")
    saved = SavedCheckpoints(run / "checkpoints/best_epoch001.ckpt", 1, run / "checkpoints/last.ckpt", 2)
    return RunSummary(
        run_dir=run,
        saved=saved,
        sample_sheet=run / "samples/epoch_002.png",
        scores={
            "val": Score(model=16.0, gray=18.9, images=12, which="last epoch"),
            "test": Score(model=test_model, gray=test_gray, images=48, which="best checkpoint"),
        },
        builtin_photos=builtin,
    )


def test_a_model_worse_than_gray_gets_the_honest_sentence():
    text = format_summary(summary_with(31.13, 22.79), cwd=Path("/runs"))
    lines = text.splitlines()
    assert lines[0] == "Run directory: r"
    assert "best checkpoints/best_epoch001.ckpt (epoch 1), last checkpoints/last.ckpt (epoch 2)" in lines[1]
    assert "samples/epoch_002.png" in lines[2]
    assert re.search(r"test\s+31\.13\s+22\.79\s+48\s+\(best checkpoint\)", text)
    sentence = " ".join(lines[lines.index(next(line for line in lines if line.startswith("On the test"))) :])
    assert "worse than leaving the photos gray (CIE76 31.13 vs 22.79" in sentence
    assert sentence.endswith(BUILTIN_PHOTOS_ADVICE) and "data=kaggle" in sentence and "colorize" in sentence
    assert all(len(line) <= 100 for line in lines if not line.startswith(" "))
    other = verdict(summary_with(31.13, 22.79, builtin=False))
    assert other is not None and "data=kaggle" not in other


def test_a_model_better_than_gray_gets_no_sentence():
    assert verdict(summary_with(20.0, 22.79)) is None
    assert "worse" not in format_summary(summary_with(20.0, 22.79))


def test_run_names_say_what_ran():
    assert run_name("T", "model2", "hls") == "T_model2-hls"
    assert run_name("T", "cnn", "lab", "study_cnn") == "T_cnn-lab_study_cnn"
    assert run_name("T") == "T"  # evaluate.py chooses no model


def test_only_a_directory_holding_nothing_but_hydras_files_is_removed(tmp_path):
    unstarted = tmp_path / "unstarted"
    (unstarted / ".hydra").mkdir(parents=True)
    (unstarted / "train.log").write_text("")
    assert remove_unstarted_run_dir(unstarted) and not unstarted.exists()
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    (resumed / ".hydra").mkdir()
    assert not remove_unstarted_run_dir(resumed) and (resumed / "checkpoints").is_dir()


def user_env() -> dict[str, str]:
    """The environment of a user without W&B credentials: W&B's own output is not silenced for the test."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")}
    return {**env, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}


def tiny_train_command(sample_root: Path, tmp_path: Path, *overrides: str) -> list[str]:
    """`make train`'s command (train.py with the default config) on the tiny photo set, logs under `tmp_path`."""
    data = [f"{key}={value}" for key, value in TINY_SAMPLE.items()]
    return [
        sys.executable,
        "train.py",
        f"paths.root_dir={tmp_path}",
        f"paths.data_dir={sample_root.parent}",
        *data,
        "trainer.max_epochs=2",
        *overrides,
    ]


def is_table_line(line: str) -> bool:
    return line[:1] in "┏┃┡│└" or line.startswith(("Trainable params", "Non-trainable", "Total ", "Modules in"))


def is_progress_line(line: str) -> bool:
    """A progress bar, or one of the metric lines rich wraps below it (``train/loss_step:``, ``0.027``)."""
    stripped = line.strip()
    return "━" in line or (line.startswith(" " * 20) and re.fullmatch(r"[\w/.:\- ]+", stripped) is not None)


@pytest.mark.slow
def test_make_train_prints_the_config_line_model_summary_progress_test_table_and_summary(sample_root, tmp_path):
    result = subprocess.run(
        tiny_train_command(sample_root, tmp_path), cwd=REPO, env=user_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) <= LINE_BUDGET, output

    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}_cnn-lab", run.name)

    start = next(i for i, line in enumerate(lines) if line.startswith("Run directory: "))
    head, summary = lines[:start], lines[start:]
    assert head[0].startswith("cnn on ") and "batch size: 8 per device" in head[0]
    unexpected = [line for line in head[1:] if not (is_table_line(line) or is_progress_line(line))]
    assert not unexpected, "lines that are not the config line, model summary, progress bars or test table"
    assert any("test/cie76" in line for line in head), "the test table"

    assert summary[0] == f"Run directory: {run}" or summary[0].endswith(run.name)
    text = "\n".join(summary)
    assert "best checkpoints/best_epoch" in text and "last checkpoints/last.ckpt (epoch 1)" in text
    assert "sample sheet  samples/epoch_001.png" in text
    scores = {
        m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"(val|test)\s+([\d.]+)\s+([\d.]+)", text)
    }
    assert set(scores) == {"val", "test"}
    assert f"wandb sync {run.resolve()}" in text or f"wandb sync {run}" in text
    test_model, test_gray = scores["test"]
    assert (test_model >= test_gray) == ("worse than leaving the photos gray" in text)


@pytest.mark.slow
def test_a_run_that_fails_its_checks_leaves_no_directory(sample_root, tmp_path):
    result = subprocess.run(
        tiny_train_command(sample_root, tmp_path, "data.crop_size=1000"),
        cwd=REPO,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    runs = tmp_path / "logs" / "train" / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "the failed run's directory is gone"
