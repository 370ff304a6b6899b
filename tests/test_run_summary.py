"""What a person sees after `make train`: the summary block, the gray baseline, the honest sentence,
run directory names, and nothing else on the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import colorization.jobs.train as train_job
from colorization.data.lab_arrays import LabArrays, make_split
from colorization.jobs.run_dirs import remove_unstarted_run_dir, run_name
from colorization.jobs.train_report import (
    BUILTIN_PHOTOS_ADVICE,
    RunSummary,
    SavedCheckpoints,
    Score,
    checkpoint_epoch,
    format_summary,
    summarize_run,
    verdict,
)
from tests.helpers.configs import REPO, TINY_SAMPLE, compose_config, tiny_overrides
from tests.helpers.datasets import write_kaggle_layout

LINE_BUDGET = 60
"""Lines a default `make train` may print on the tiny settings (model summary and tables included)."""


def test_the_summary_takes_its_scores_from_the_loops_metrics():
    trainer = SimpleNamespace(callbacks=[])
    metrics = {"val/cie76": 16.5, "val/gray_cie76": 18.25, "val/scored_images": 12.0, "test/cie76": 20.0}
    summary = summarize_run(trainer, metrics, Path("/runs/r"), SavedCheckpoints())
    assert summary.scores == {"val": Score(model=16.5, gray=18.25, images=12, which="last epoch")}


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


def kaggle_gray_cie76(indices: np.ndarray) -> float:
    """The gray baseline's CIE76 on images `indices` of `write_kaggle_layout`'s arrays: image i has
    a* = i - 128 and b* = 127 - i everywhere, so leaving it gray is off by their hypotenuse at every pixel."""
    return float(np.mean([np.hypot(i - 128, 127 - i) for i in indices]))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_summary_scores_what_the_limited_loops_scored_and_reads_no_data(tmp_path, monkeypatch):
    root = write_kaggle_layout(tmp_path / "kaggle", [20, 20, 12])
    batch = 2
    overrides = [
        *tiny_overrides(None, tmp_path / "run"),
        "data=kaggle",
        f"data.root={root}",
        "data.crop_size=16",
        f"data.batch_size={batch}",
        "data.val_fraction=0.2",
        "data.num_workers=0",
        "data.pin_memory=false",
        "data.persistent_workers=false",
        "++trainer.limit_train_batches=2",
        "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1",
    ]
    cfg = compose_config("train", overrides)
    reads, summaries = [], []
    read = LabArrays.read
    monkeypatch.setattr(
        LabArrays, "read", lambda self, index, *a, **k: reads.append(index) or read(self, index, *a, **k)
    )
    summarize = train_job.summarize_run

    def watched(*args, **kwargs):
        before = len(reads)
        summaries.append(summarize(*args, **kwargs))
        assert len(reads) == before, "the summary read images the loops had already scored"
        return summaries[-1]

    monkeypatch.setattr(train_job, "summarize_run", watched)
    metrics = train_job.train(cfg)

    (summary,) = summaries
    split = make_split([20, 20, 12], None, 0.2, None, cfg.seed)
    first_batches = {"val": split.val[:batch], "test": split.test[:batch]}  # what limit_*_batches=1 scores
    for name, indices in first_batches.items():
        score = summary.scores[name]
        assert score.images == batch == metrics[f"{name}/scored_images"]
        assert score.model == metrics[f"{name}/cie76"]
        assert score.gray == pytest.approx(kaggle_gray_cie76(indices), rel=1e-6)
