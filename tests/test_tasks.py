"""The entry points' task wrapper and the release-format registry: the seams new code plugs into."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from colorization.errors import DataError
from colorization.jobs import eval_results as report
from colorization.jobs.evaluate import evaluate
from colorization.jobs.tasks import USER_ERROR_EXIT_CODE, run_task
from tests.helpers.configs import REPO, evaluate_config


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


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (absolute names)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_generic_code_imports_no_model_family_and_jobs_do_not_import_each_other():
    package = REPO / "colorization"
    shared = {"__init__", "base", "build", "losses"}
    families = {f"colorization.modules.{p.stem}" for p in (package / "modules").glob("*.py") if p.stem not in shared}
    for path in package.rglob("*.py"):
        if path.parent.name != "modules":
            assert not imported_modules(path) & families, f"{path.relative_to(package)} imports a specific family"
    assert "colorization.jobs.train" not in imported_modules(package / "jobs" / "evaluate.py")
