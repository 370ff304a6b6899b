"""Checkpoints written before the package was reorganised still load, colorize, evaluate and resume.

`tests/fixtures/legacy/` holds a real `train.py` run of every family made with that code (their stored
configs name ``colorization.models.*``, ``colorization.losses.*``; see its README): loading follows
the moved ``_target_``s and derives the colorizer from the training config (`inference/legacy.py`).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.color.hints import Hints
from colorization.colorize import colorize_paths
from colorization.data.sample import write_sample_dataset
from colorization.inference.loading import load_colorizer
from colorization.jobs.evaluate import evaluate
from colorization.jobs.train import train
from tests.helpers.configs import compose_config
from tests.helpers.entry_points import run_script
from tests.helpers.marks import with_slow

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
FAMILIES = sorted(MANIFEST["families"])
TOLERANCE_AB = 1e-4
"""The fixtures' colours were computed in fp32 on one CPU thread; the same arithmetic gives them again."""


def checkpoint(family: str) -> Path:
    return FIXTURES / family / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def expected() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / "expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def legacy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny built-in photo set the fixtures were trained on (`paths.data_dir` of a resume)."""
    data = tmp_path_factory.mktemp("legacy_data")
    settings = dict(arg.split("=") for arg in MANIFEST["families"]["cnn"]["overrides"]["data"])
    write_sample_dataset(
        data / "sample",
        int(settings["data.image_size"]),
        int(settings["data.train_crops_per_photo"]),
        int(settings["data.test_crops_per_photo"]),
        seed=0,
    )
    return data


def test_every_stored_target_is_an_old_one():
    """The fixtures do exercise the moved-target table: they name modules that no longer exist."""
    targets = {entry.split("=")[1] for family in MANIFEST["families"].values() for entry in family["targets"]}
    assert {t for t in targets if t.startswith(("colorization.models.", "colorization.losses."))}
    assert not (Path(__file__).parents[1] / "colorization" / "models").exists()


@pytest.mark.parametrize("family", with_slow(FAMILIES, ["siggraph17"]))
def test_an_old_checkpoint_colorizes_as_it_did(family, expected):
    torch.set_num_threads(1)
    model = load_colorizer(checkpoint(family))
    lab = model.colorize_full(expected["input_l"])
    torch.testing.assert_close(lab, expected[family], atol=TOLERANCE_AB, rtol=0)
    if family == "siggraph17":
        hints = Hints.from_points([expected["siggraph17_hint_points"].tolist()], size=(40, 56))
        with_hints = model.colorize_full(expected["input_l"], hints=hints)
        torch.testing.assert_close(with_hints, expected["siggraph17_hints"], atol=TOLERANCE_AB, rtol=0)


@pytest.mark.slow
def test_old_checkpoints_colorize_photo_files(tmp_path):
    photo = tmp_path / "gray.png"
    Image.fromarray(np.linspace(0, 255, 48 * 40).reshape(40, 48).astype(np.uint8)).save(photo)
    for family in FAMILIES:
        tally = colorize_paths([photo], str(checkpoint(family)), tmp_path / family, workers=0)
        assert (tally.done, tally.failed) == (1, []), family
        assert Image.open(tmp_path / family / "gray.png").size == (48, 40)


@pytest.mark.slow
def test_old_checkpoints_evaluate_side_by_side(legacy_data, tmp_path):
    rows = {f"{family}": str(checkpoint(family)) for family in FAMILIES}
    cfg = compose_config(
        "evaluate",
        [
            "checkpoints={" + ", ".join(f"{name}: {path}" for name, path in rows.items()) + "}",
            f"paths.data_dir={legacy_data}",
            f"paths.output_dir={tmp_path / 'eval'}",
            *MANIFEST["families"]["cnn"]["overrides"]["data"],
            "data.limit=4",
            "logger=none",
        ],
    )
    results = {row["model"]: row for row in evaluate(cfg)}
    for family in FAMILIES:
        assert results[family]["images"] == 4 and np.isfinite(results[family]["cie76"]), family


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_an_old_run_resumes_in_its_own_directory(family, legacy_data, tmp_path):
    run = tmp_path / family
    shutil.copytree(FIXTURES / family, run)
    overrides = MANIFEST["families"][family]["overrides"]
    limits = [  # one batch of each loop: what is checked is that the old state resumes, not what it learns
        f"+trainer.limit_{loop}_batches=1"
        for loop in ("train", "val", "test")
        if f"+trainer.limit_{loop}_batches=1" not in overrides["trainer"]
    ]
    cfg = compose_config(
        "train",
        [
            *overrides["model"],
            *overrides["data"],
            *overrides["trainer"],
            *limits,
            "trainer.max_epochs=2",
            f"paths.root_dir={tmp_path}",
            f"paths.data_dir={legacy_data}",
            f"paths.output_dir={run}",
            "ckpt_path=last",
        ],
    )
    metrics = train(cfg)
    assert np.isfinite(metrics["val/cie76"])
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 1, "epoch 0 came from the old run, epoch 1 from this one"
    assert resumed["colorization"]["colorizer"] is not None, "a resumed checkpoint describes its colorizer"
    with (run / "csv" / "metrics.csv").open() as file:
        epochs = {int(row["epoch"]) for row in csv.DictReader(file) if row.get("epoch")}
    assert {0, 1} <= epochs, "the resumed run appends its epoch to the old run's metrics"


@pytest.mark.slow
def test_train_py_resume_takes_an_old_run_directory(legacy_data, tmp_path):
    run = tmp_path / "cnn"
    shutil.copytree(FIXTURES / "cnn", run)
    overrides = MANIFEST["families"]["cnn"]["overrides"]
    result = run_script(
        "train.py",
        [
            f"resume={run}",
            *overrides["model"],
            *overrides["data"],
            "trainer=cpu",
            "trainer.max_epochs=2",
            "logger=csv",
            f"paths.data_dir={legacy_data}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
