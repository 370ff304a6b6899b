"""The entry points' task wrapper (jobs/tasks.py): a user error is one line and an exit code, a bug keeps its
traceback, a failed job closes its W&B run and leaves no empty run directory."""

from __future__ import annotations

import pytest

from colorization.errors import ConfigError, DataError
from colorization.jobs import eval_results as report
from colorization.jobs.evaluate import evaluate
from colorization.jobs.tasks import USER_ERROR_EXIT_CODE, run_task
from tests.helpers.configs import evaluate_config


def test_a_user_error_is_one_line_and_exit_code_2(capsys):
    def job() -> None:
        raise DataError("photo.png: not an image")

    with pytest.raises(SystemExit) as exit_info:
        run_task(job)
    assert exit_info.value.code == USER_ERROR_EXIT_CODE
    assert capsys.readouterr().err == "error: photo.png: not an image\n"
    assert run_task(lambda: 7) == 7


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_task(lambda: 1 / 0)


def test_a_failing_evaluation_closes_its_wandb_run(sample_root, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    save_dir = tmp_path / "wandb_logs"
    logger = f"{{_target_: lightning.pytorch.loggers.WandbLogger, offline: true, save_dir: '{save_dir}', project: t}}"
    cfg = evaluate_config(sample_root, tmp_path / "eval", "crop_size=16", "~logger", f"+logger.wandb={logger}")

    def disk_full(*args, **kwargs) -> None:
        assert wandb.run is not None, "the W&B run is open when the job fails"
        raise DataError("no space left on device")

    # the scalars and the table went to W&B (its run is open); then sending the image fails
    monkeypatch.setattr(report, "log_image", disk_full)
    with pytest.raises(SystemExit):
        run_task(lambda: evaluate(cfg))
    assert list((save_dir / "wandb").glob("offline-run-*"))
    assert wandb.run is None, "the task wrapper must finish the W&B run of a failed job"


def test_a_user_error_removes_the_unstarted_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)

    def job():
        raise ConfigError("data.crop_size=0 is out of range")

    with pytest.raises(SystemExit) as exit_info:
        run_task(job, run_dir=run)
    assert exit_info.value.code == 2 and not run.exists()
    assert capsys.readouterr().err == "error: data.crop_size=0 is out of range\n"
