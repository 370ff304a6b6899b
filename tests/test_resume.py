"""Interrupted runs: what a kill, a SIGTERM or a kill mid-save leave behind, and resuming from it.

The processes are really interrupted (`tests.helpers.callbacks.SignalAtStep` signals the training process
itself at a given step), then resumed with ``resume=RUN_DIR`` as a user would.
"""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest
import torch

from colorization.errors import ConfigError
from colorization.jobs.run_dirs import wandb_run_id
from colorization.jobs.train import resume_loggers, train
from tests.helpers.configs import TINY_SAMPLE
from tests.helpers.entry_points import error_lines, run_script

FAST = ["++trainer.limit_train_batches=3", "++trainer.limit_val_batches=1", "trainer.deterministic=true"]
MODELS = {
    "cnn": [],
    "pix2pix-wgangp": [
        "model=pix2pix",
        "model/gan_loss=wgangp",
        "++model.generator.ngf=8",
        "++model.discriminator.ndf=8",
    ],
    "eccv16": ["model=eccv16"],
}


def tiny_args(sample_root: Path, root: Path) -> list[str]:
    return [
        f"paths.root_dir={root}",
        f"paths.data_dir={sample_root.parent}",
        *(f"{key}={value}" for key, value in TINY_SAMPLE.items()),
        "trainer=cpu",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "callbacks.sample_sheet=null",
        *FAST,
    ]


def crash_at(step: int, signal_name: str = "SIGKILL") -> list[str]:
    return [
        "+callbacks.crash._target_=tests.helpers.callbacks.SignalAtStep",
        f"+callbacks.crash.step={step}",
        f"+callbacks.crash.signal_name={signal_name}",
    ]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_a_run_killed_mid_epoch_and_resumed_ends_with_the_uninterrupted_weights(model, sample_root, tmp_path):
    args = [*tiny_args(sample_root, tmp_path), *MODELS[model], "trainer.max_epochs=2", "test=false"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    result = run_script("train.py", [*args, f"hydra.run.dir={whole}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    # SIGKILL in the second epoch (3 batches per epoch): only the end-of-epoch-0 checkpoint survives
    result = run_script("train.py", [*args, f"hydra.run.dir={killed}", *crash_at(4)], cwd=tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0

    result = run_script("train.py", [*args, f"resume={killed}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    expected, resumed = final_weights(whole), final_weights(killed)
    assert expected.keys() == resumed.keys()
    for key, value in expected.items():
        if value.is_floating_point():
            assert torch.allclose(resumed[key], value, rtol=0, atol=1e-6), key
        else:
            assert torch.equal(resumed[key], value), key
    # the interrupted attempt's rows stay in the metrics file, the resumed epochs follow them
    with (killed / "csv" / "metrics.csv").open() as file:
        epochs = [int(row["epoch"]) for row in csv.DictReader(file)]
    assert epochs[0] == 0 and epochs[-1] == 1 and epochs.count(0) >= 2


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(sample_root, tmp_path):
    run_dir = tmp_path / "run"
    args = [*tiny_args(sample_root, tmp_path), "trainer.max_epochs=2"]
    result = run_script("train.py", [*args, f"hydra.run.dir={run_dir}", *crash_at(4, "SIGTERM")], cwd=tmp_path)
    assert result.returncode == 143, result.stderr[-3000:]
    (line,) = error_lines(result)
    assert "SIGTERM" in line and f"resume={run_dir}" in line and "Traceback" not in result.stderr
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["global_step"] == 4 and "optimizer_states" in state  # mid-epoch 1, full state
    assert not (run_dir / "metrics.json").exists()

    result = run_script("train.py", [*args, f"resume={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert (run_dir / "metrics.json").is_file()


def test_last_is_the_final_epoch_and_best_holds_weights_only(train_config, tmp_path):
    # ranked by the epoch number, the first epoch is the best: every later validation is "worse"
    worse = ["callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min"]
    cfg = train_config(*FAST, "trainer.max_epochs=3", *worse, "test=false")
    train(cfg)
    checkpoints = tmp_path / "run" / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    (best_path,) = checkpoints.glob("best_*.ckpt")
    best = torch.load(best_path, weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 9 and "optimizer_states" in last
    assert best_path.name == "best_epoch000.ckpt" and best["epoch"] == 0
    assert "optimizer_states" not in best and "callbacks" not in best
    assert best["colorization"]["model"]["_target_"].endswith("RegressionColorizer")


@pytest.mark.slow
def test_best_and_last_of_the_same_epoch_are_one_file(train_config, tmp_path):
    # ranked by the epoch number in "max" mode, every epoch is the new best
    better = ["callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=max"]
    train(train_config(*FAST, "trainer.max_epochs=2", *better, "test=false"))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best_epoch001.ckpt", "last.ckpt"]
    assert os.path.samefile(checkpoints / "best_epoch001.ckpt", checkpoints / "last.ckpt")


def test_an_unwritable_checkpoint_directory_stops_the_run_at_start_up(train_config, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoints").write_text("a file where the checkpoints directory should be")
    with pytest.raises(ConfigError, match=r"callbacks.model_checkpoint.dirpath='.*checkpoints' is not writable"):
        train(train_config())


def test_a_resumed_run_logs_into_the_interrupted_runs_wandb_run(train_config, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "wandb" / "offline-run-20260101_120000-abc123").mkdir(parents=True)
    (run_dir / "wandb" / "latest-run").symlink_to(run_dir / "wandb" / "offline-run-20260101_120000-abc123")
    assert wandb_run_id(run_dir) == "abc123"
    cfg = train_config("logger=wandb")
    resume_loggers(cfg, run_dir)
    assert cfg.logger.wandb.id == "abc123" and cfg.logger.wandb.resume == "allow"


@pytest.mark.slow
def test_lightnings_spelling_of_resuming_continues_the_run_in_its_directory(sample_root, tmp_path):
    run_dir = tmp_path / "run"
    args = [*tiny_args(sample_root, tmp_path), "test=false", f"hydra.run.dir={run_dir}"]
    result = run_script("train.py", [*args, "trainer.max_epochs=1"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    resume = [f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", "trainer.max_epochs=2"]
    result = run_script("train.py", [*args, *resume], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert len(list((run_dir / ".hydra").glob("resumed_*"))) == 1, "resumed like resume=RUN_DIR"
    with (run_dir / "csv" / "metrics.csv").open() as file:
        assert {int(row["epoch"]) for row in csv.DictReader(file)} == {0, 1}, "the metrics continue in place"


def test_resume_continues_from_last_checkpoint(train_config, tmp_path: Path):
    first = tmp_path / "first"
    train(train_config("trainer.max_epochs=1", "test=false", run_dir=first))
    last = first / "checkpoints" / "last.ckpt"
    steps_after_one_epoch = torch.load(last, weights_only=False)["global_step"]
    second = tmp_path / "second"
    train(train_config("trainer.max_epochs=2", "test=false", f"ckpt_path={last}", run_dir=second))
    resumed = torch.load(second / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 1 and resumed["global_step"] == 2 * steps_after_one_epoch
    assert sorted(p.name for p in (second / "samples").iterdir()) == ["epoch_001.png"]
