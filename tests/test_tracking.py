"""Experiment tracking: W&B online/offline choice, and what a real offline run logs (read back from its files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import wandb
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from colorization.errors import ConfigError
from colorization.jobs.tracking import resolve_wandb_mode, run_tags, wandb_credentials_available
from colorization.jobs.train import train
from tests.helpers.wandb_records import offline_runs

EPOCHS = 2


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment without W&B settings; returns the netrc path W&B would read."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


def test_wandb_is_offline_without_credentials_and_online_with_them(no_credentials: Path, monkeypatch):
    assert not wandb_credentials_available()
    assert resolve_wandb_mode() == "offline"

    no_credentials.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    no_credentials.chmod(0o600)
    assert resolve_wandb_mode() == "online", "`wandb login` stores the key in netrc"
    no_credentials.unlink()

    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert resolve_wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert resolve_wandb_mode() == "offline", "an explicit WANDB_MODE wins"
    assert resolve_wandb_mode("disabled") == "disabled", "logger.wandb.mode wins over everything"
    with pytest.raises(ConfigError, match="logger.wandb.mode='later'"):
        resolve_wandb_mode("later")


def test_run_tags_without_hydra_keep_the_given_tags_once():
    assert run_tags(["study", "", "study", "cnn"]) == ["study", "cnn"]


@pytest.mark.slow
def test_offline_wandb_run_logs_config_metrics_sample_panels_and_a_test_table(train_config, tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    cfg = train_config(
        "logger=many", "logger.wandb.mode=offline", f"trainer.max_epochs={EPOCHS}", "tags=[unit]", run_dir=run_dir
    )
    metrics = train(cfg)
    assert wandb.run is None, "train() must finish its W&B run so that the next job of a multirun gets a new one"

    (run,) = offline_runs(run_dir)
    # the summary at the end of the run says how to upload the offline run
    assert f"wandb sync {run_dir.resolve() / 'wandb'}/offline-run-" in capsys.readouterr().out
    assert run.run.project == "bw-colorization"
    assert "unit" in run.run.tags
    # the composed config, not just the model's hyperparameters
    assert run.config["data"]["crop_size"] == 32
    assert run.config["model"]["optimizer"]["lr"] == cfg.model.optimizer.lr
    assert run.config["trainer"]["max_epochs"] == EPOCHS

    for key in ("val/cie76", "val/mse", "train/images_per_sec", "train/loss_epoch"):
        assert len(run.values(key)) == EPOCHS, key
    assert run.values("val/cie76")[-1] == pytest.approx(metrics["val/cie76"])
    assert run.values("test/cie76") == [pytest.approx(metrics["test/cie76"])]
    assert run.values("test/mse") == [pytest.approx(metrics["test/mse"])]
    assert all(rate > 0 for rate in run.values("train/images_per_sec"))

    # one sample panel per validation epoch, the same pictures as samples/epoch_NNN.png
    panels = run.values("val/samples/filenames")
    assert len(panels) == EPOCHS
    for epoch, (filename,) in enumerate(panels):
        logged = run.dir / "files" / filename
        assert logged.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        from PIL import Image

        assert Image.open(logged).size == Image.open(run_dir / "samples" / f"epoch_{epoch:03d}.png").size

    # the test table: one row per test image, thumbnails in a run_table artifact, per-image metrics
    (table_file,) = (run.dir / "files" / "media" / "table").rglob("*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["index", "gray", "prediction", "truth", "mse", "cie76"]
    test_images = 2 * cfg.data.test_crops_per_photo
    assert len(table["data"]) == test_images
    per_image_cie76 = torch.tensor([row[5] for row in table["data"]])
    per_image_mse = torch.tensor([row[4] for row in table["data"]])
    # every test image has the same size, so the mean of per-image means is the test metric
    assert per_image_cie76.mean().item() == pytest.approx(metrics["test/cie76"], rel=1e-4)
    assert per_image_mse.mean().item() == pytest.approx(metrics["test/mse"], rel=1e-4)
    (artifact,) = [a for a in run.artifacts if a.type == "run_table"]
    thumbnails = [entry for entry in artifact.manifest.contents if entry.path.endswith(".png")]
    assert len(thumbnails) == 3 * test_images, "gray, prediction and truth of every test image"
    assert all(Path(entry.local_path).is_file() for entry in thumbnails)

    # TensorBoard got the same panels and the metrics
    images, scalars = set(), set()
    for events in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
        accumulator.Reload()
        images.update(accumulator.Tags()["images"])
        scalars.update(accumulator.Tags()["scalars"])
        if "val/samples" in accumulator.Tags()["images"]:
            assert len(accumulator.Images("val/samples")) == EPOCHS
    assert "val/samples" in images
    assert {"val/cie76", "test/cie76", "train/images_per_sec"} <= scalars
    assert (run_dir / "csv" / "metrics.csv").is_file()


@pytest.mark.slow
def test_logger_none_still_writes_metrics_and_checkpoints(train_config, tmp_path: Path):
    run_dir = tmp_path / "run"
    metrics = train(train_config("logger=none", run_dir=run_dir))
    assert json.loads((run_dir / "metrics.json").read_text()) == pytest.approx(metrics)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "csv").exists() and not (run_dir / "wandb").exists()
