"""Sweeps: experiment configs with their own sweep params, launchers, Optuna, train.py multiruns, the summary table."""

from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from colorization.modules.build import build_module
from colorization.summarize import main as summarize_main
from colorization.summarize import summarize, write_summary
from tests.helpers.configs import CONF_DIR
from tests.helpers.entry_points import cli_overrides, error_lines, file_hashes, run_script
from tests.helpers.wandb_records import offline_runs

STUDY_MODELS = ["cnn", "pix2pix", "cwgan", "eccv16", "siggraph17"]


def compose_with_hydra(*overrides: str) -> DictConfig:
    """`train.yaml` composed with its ``hydra`` node (sweeper, launcher), as `train.py -m` would see it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=["data.root=/data/ic", *overrides], return_hydra_config=True)


@pytest.mark.parametrize(
    ("experiment", "swept", "values"),
    [
        ("cnn_colorspaces", "colorspace", "rgb,hls,lab"),
        ("cnn_variants", "model", "model1,model2,model3"),
        ("study_models", "model", ",".join(STUDY_MODELS)),
    ],
)
def test_experiment_is_the_whole_command(experiment, swept, values):
    cfg = compose_with_hydra(f"experiment={experiment}")
    assert cfg.hydra.sweeper.params[swept] == values
    # the study's setting: first 4,000 Kaggle images, 20% validation, 5 epochs
    assert cfg.data._target_ == "colorization.data.LabArraysDataModule"
    assert (cfg.data.limit, cfg.data.val_fraction, cfg.trainer.max_epochs) == (4000, 0.2, 5)
    assert experiment in cfg.tags


@pytest.mark.parametrize("name", STUDY_MODELS)
def test_study_models_share_data_and_budget(name):
    cfg = compose_with_hydra("experiment=study_models", f"model={name}")
    reference = compose_with_hydra("experiment=study_models", "model=cnn")
    for group in ("data", "trainer", "colorspace"):
        assert cfg[group] == reference[group], f"{name}: {group} differs from the CNN's"
    assert cfg.seed == reference.seed
    model = build_module(cfg.model, cfg.colorspace.name)
    assert type(model).__name__ == cfg.model._target_.rsplit(".", 1)[1], "the family the model option names"
    assert model.colorspace.name == reference.colorspace.name


def test_every_swept_option_of_the_cnn_experiments_composes():
    for experiment, swept in (("cnn_colorspaces", "colorspace"), ("cnn_variants", "model")):
        options = compose_with_hydra(f"experiment={experiment}").hydra.sweeper.params[swept].split(",")
        for option in options:
            cfg = compose_with_hydra(f"experiment={experiment}", f"{swept}={option}")
            build_module(cfg.model, cfg.colorspace.name)  # builds: what is checked is that this does not raise


def test_launchers_compose():
    joblib = compose_with_hydra("hydra/launcher=joblib").hydra.launcher
    assert joblib._target_.endswith("JoblibLauncher")
    slurm = compose_with_hydra("hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    assert slurm._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (slurm.gpus_per_node, slurm.tasks_per_node, slurm.partition, slurm.timeout_min) == (1, 1, "gpu", 240)


def test_optuna_search_minimises_val_cie76_over_keys_that_exist():
    cfg = compose_with_hydra("hparams_search=optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "minimize" and cfg.optimized_metric == "val/cie76"
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    for key in sweeper.params:
        if key.startswith("++"):  # a setting left at the code's default: an argument of what its parent builds
            parent, _, name = key.removeprefix("++").rpartition(".")
            built = get_object(OmegaConf.select(cfg, parent)._target_)
            assert name in inspect.signature(built).parameters, (
                f"hparams_search/optuna.yaml sweeps {key}: no such argument"
            )
        else:
            assert OmegaConf.select(cfg, key) is not None, f"hparams_search/optuna.yaml sweeps {key}: not a config key"


def write_job(sweep: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))


def test_summary_lists_what_differs_and_the_final_metrics(tmp_path: Path, capsys):
    sweep = tmp_path / "sweep"
    common = "experiment=cnn_variants"
    first = {"train/images_per_sec": 250.0, "test/cie76": 13.25, "val/cie76": 12.5, "train/loss_step": 0.1}
    write_job(sweep, 0, [common, "model=model1"], first)
    write_job(sweep, 1, [common, "model=model2"], {"val/cie76": 11.0, "test/cie76": 12.0})
    write_job(sweep, 10, [common, "model=model3"], None)
    columns, rows = summarize(sweep)
    assert columns == ["job", "model", "val/cie76", "test/cie76", "train/images_per_sec", "status"]
    assert [row["job"] for row in rows] == ["0", "1", "10"]
    assert [row["status"] for row in rows] == ["done", "done", "failed or running"]

    summarize_main([str(sweep)])
    printed = capsys.readouterr().out
    assert printed.splitlines()[2] == "| 0 | model1 | 12.5 | 13.25 | 250 | done |"
    assert (sweep / "summary.md").read_text() == printed
    with open(sweep / "summary.csv") as handle:
        assert list(csv.DictReader(handle))[1] == {
            "job": "1",
            "model": "model2",
            "val/cie76": "11",
            "test/cie76": "12",
            "train/images_per_sec": "",
            "status": "done",
        }


def test_summary_of_a_directory_without_jobs_is_a_user_error(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        summarize_main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no job directories" in capsys.readouterr().err


@pytest.mark.slow
def test_multirun_over_strides_produces_one_run_per_job(sample_root: Path, tmp_path: Path):
    result = run_script(
        "train.py", ["-m", "++model.net.stride=1,2", *cli_overrides(sample_root, tmp_path)], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1"]
    for job, stride in zip(jobs, (1, 2), strict=True):
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert "val/cie76" in json.loads((job / "metrics.json").read_text())
        assert f"++model.net.stride={stride}" in (job / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.slow
def test_multirun_grid_one_dir_and_one_wandb_run_per_job_in_one_group(sample_root: Path, tmp_path: Path):
    # two joblib worker processes run two jobs each: wandb.finish() must close every job's run
    args = ["-m", "model=cnn", "++model.net.stride=1,2", "++model.net.filters=4,8", "logger=default", "tags=[grid]"]
    args += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = run_script("train.py", [*args, *cli_overrides(sample_root, tmp_path)], cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1", "2", "3"]

    runs = [run for job in jobs for run in offline_runs(job)]
    assert len(runs) == 4, "one W&B run per job: wandb.finish() after each"
    assert len({run.run.run_id for run in runs}) == 4
    assert len({run.run.run_group for run in runs}) == 1 and runs[0].run.run_group.endswith(sweep.name)
    assert all({"cnn", "lab", "grid"} <= set(run.run.tags) for run in runs)

    write_summary(sweep)
    with open(sweep / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    grid = [(row["model.net.stride"], row["model.net.filters"]) for row in rows]
    assert grid == [("1", "4"), ("1", "8"), ("2", "4"), ("2", "8")]
    for job, row in zip(jobs, rows, strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert float(row["val/cie76"]) == pytest.approx(metrics["val/cie76"], rel=1e-5)
        assert float(row["test/cie76"]) == pytest.approx(metrics["test/cie76"], rel=1e-5)


@pytest.mark.slow
def test_optuna_search_runs_and_reports_the_best_trial(sample_root: Path, tmp_path: Path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"  # a stored study needs the SQLAlchemy 1.4 pin
    args = ["hparams_search=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={storage}"]
    args += ["logger=csv", "++model.net.filters=4"]
    result = run_script("train.py", [*args, *cli_overrides(sample_root, tmp_path)], cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    trials = [json.loads(path.read_text())["val/cie76"] for path in sorted(sweep.glob("*/metrics.json"))]
    assert len(trials) == 2
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(trials))
    assert set(best["best_params"]) == {"model.optimizer.lr", "++model.net.stride"}

    import optuna

    study = optuna.load_study(study_name="cnn_lab", storage=storage)
    assert sorted(trial.value for trial in study.trials) == pytest.approx(sorted(trials))


@pytest.mark.slow
def test_a_sweep_into_a_used_sweep_directory_is_refused_and_changes_nothing(sample_root: Path, tmp_path: Path):
    sweep = tmp_path / "sweep"
    args = ["-m", "++model.net.filters=4,8", "logger=csv", f"hydra.sweep.dir={sweep}"]
    args += cli_overrides(sample_root, tmp_path)
    result = run_script("train.py", args, cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    before = file_hashes(sweep)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]

    result = run_script("train.py", args, cwd=tmp_path, timeout=400)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert f"hydra.sweep.dir='{sweep}' already holds files of another sweep" in line
    assert file_hashes(sweep) == before
