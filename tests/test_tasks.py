"""The entry points' task wrapper and the release-format registry: the seams new code plugs into."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from colorization import releases, report
from colorization.errors import DataError
from colorization.inference.loading import build_colorizer, load_colorizer
from colorization.inference.releases import ReleaseFormat, identify_release, register_release
from colorization.jobs.evaluate import evaluate
from colorization.jobs.tasks import USER_ERROR_EXIT_CODE, run_task
from colorization.modules import RegressionColorizer
from tests.conftest import REPO, compose_config
from tests.test_evaluate import evaluate_config


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


class ToyRelease(torch.nn.Module):
    """Stands in for another family's published network: one key identifies its files."""

    def __init__(self) -> None:
        super().__init__()
        self.toy_head = torch.nn.Conv2d(1, 2, 1)


def build_toy(path: Path) -> RegressionColorizer:
    model = build_colorizer(compose_config("train", ["model=cnn"]).model, "lab")
    model.toy_loaded_from = path
    return model.eval()


def test_a_new_release_format_loads_without_touching_the_generic_loader(tmp_path, monkeypatch):
    monkeypatch.setattr(releases, "_FORMATS", dict(releases._FORMATS))  # registered for this test only
    toy = ReleaseFormat(name="toy", identify=lambda state: "toy_head.weight" in state, build=build_toy)
    register_release(toy)
    register_release(toy)  # registering the same format again is harmless
    path = tmp_path / "toy-release.pth"
    torch.save(ToyRelease().state_dict(), path)
    model = load_colorizer(path)
    assert isinstance(model, RegressionColorizer) and model.toy_loaded_from == path and not model.training
    assert identify_release({"toy_head.weight": torch.zeros(1)}) is toy
    with pytest.raises(ValueError, match="'toy' is already registered"):
        register_release(ReleaseFormat(name="toy", identify=toy.identify, build=build_toy))


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
    families = {f"colorization.modules.{p.stem}" for p in (package / "modules").glob("*.py")} - {
        "colorization.modules.__init__",
        "colorization.modules.base",
    }
    for path in package.glob("*.py"):
        assert not imported_modules(path) & families, f"{path.name} imports a specific family"
    assert "colorization.jobs.train" not in imported_modules(package / "evaluation.py")
