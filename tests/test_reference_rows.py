"""The reference rows' cache (`colorization.jobs.reference_rows`): reused across evaluations of the same split,
never for changed images or changed metric code, and equal to rows scored afresh."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import numpy as np
import pytest

import colorization.jobs.scoring as scoring
from colorization.jobs import reference_rows
from colorization.jobs.evaluate import evaluate
from colorization.jobs.scoring import GRAY, GROUND_TRUTH
from colorization.metrics import image as M
from colorization.metrics.image import FULL_METRICS
from tests.helpers.configs import kaggle_evaluate_config
from tests.helpers.datasets import write_kaggle_layout

REFERENCE_ROWS = (GRAY, GROUND_TRUTH)


@pytest.fixture
def scored_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows' metrics each evaluation built (one metric collection per row it scores)."""
    built = []
    make = scoring.colorization_metrics

    def counted(*args, **kwargs):
        built.append(1)
        return make(*args, **kwargs)

    monkeypatch.setattr(scoring, "colorization_metrics", counted)
    return built


def evaluate_reference_rows(root: Path, run_dir: Path) -> dict[str, dict[str, float]]:
    """The metrics of the gray and ground-truth rows of an evaluation without models on `root`'s test split."""
    settings = ("data.crop_size=16", "data.num_workers=0", "data.pin_memory=false", "device=cpu", "~logger")
    cfg = kaggle_evaluate_config(run_dir, root, *settings)
    rows = {row["model"]: row for row in evaluate(cfg)}
    assert list(rows) == list(REFERENCE_ROWS)
    return {name: {key: rows[name][key] for key in FULL_METRICS} for name in REFERENCE_ROWS}


def test_a_second_evaluation_reuses_the_reference_rows_and_they_equal_fresh_ones(tmp_path, user_cache, scored_rows):
    root = write_kaggle_layout(tmp_path / "kaggle", [6, 5, 4])
    fresh = evaluate_reference_rows(root, tmp_path / "first")
    assert len(scored_rows) == 2, "a cold cache scores both reference rows"
    (entry,) = (user_cache / reference_rows.CACHE_FOLDER).iterdir()
    assert json.loads(entry.read_text())["format"] == reference_rows.ENTRY_FORMAT  # plain JSON

    scored_rows.clear()
    cached = evaluate_reference_rows(root, tmp_path / "second")
    assert scored_rows == [], "a warm cache scores no reference row"
    assert cached == fresh  # bit for bit, the ground truth's infinite PSNR included
    assert cached[GROUND_TRUTH]["psnr"] == float("inf")


def test_an_image_changed_under_the_same_name_and_time_invalidates_the_entry(tmp_path, monkeypatch, scored_rows):
    root = write_kaggle_layout(tmp_path / "kaggle", [6, 5, 4])
    before = evaluate_reference_rows(root, tmp_path / "first")
    ab_file = root / "ab" / "ab" / "ab3.npy"  # the test split
    stat = ab_file.stat()
    ab = np.load(ab_file, mmap_mode="r+")
    ab[1, :, :, 0] = 200  # one image's colour, same file, same names
    ab.flush()
    del ab
    os.utime(ab_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even its time says nothing changed

    scored_rows.clear()
    after = evaluate_reference_rows(root, tmp_path / "changed")
    assert len(scored_rows) == 2, "the changed split's reference rows are scored again"
    monkeypatch.setenv("COLORIZATION_CACHE", str(tmp_path / "empty-cache"))
    assert after == evaluate_reference_rows(root, tmp_path / "fresh")
    assert after[GRAY]["cie76"] != before[GRAY]["cie76"]

    monkeypatch.setenv("COLORIZATION_CACHE", str(tmp_path / "user-cache"))
    scored_rows.clear()
    assert evaluate_reference_rows(root, tmp_path / "again") == after
    assert scored_rows == [], "the rewritten entry serves the changed split"


def test_changed_metric_code_or_an_unreadable_entry_is_scored_afresh(tmp_path, user_cache, monkeypatch, scored_rows):
    root = write_kaggle_layout(tmp_path / "kaggle", [6, 5, 4])
    fresh = evaluate_reference_rows(root, tmp_path / "first")
    monkeypatch.setattr(reference_rows, "metric_code_version", lambda: "another version of the metrics")
    scored_rows.clear()
    assert evaluate_reference_rows(root, tmp_path / "new-code") == fresh
    assert len(scored_rows) == 2, "rows cached by other metric code are not used"

    (entry,) = (user_cache / reference_rows.CACHE_FOLDER).iterdir()
    entry.write_text('{"format": 1, "rows": ')
    scored_rows.clear()
    assert evaluate_reference_rows(root, tmp_path / "torn") == fresh
    assert len(scored_rows) == 2


def test_the_metric_code_version_follows_the_metric_source(monkeypatch, tmp_path):
    original = reference_rows.metric_code_version()
    edited = tmp_path / "image.py"
    edited.write_text(Path(M.__file__).read_text().replace("UINT8_PEAK = 255.0", "UINT8_PEAK = 256.0"))
    real = inspect.getsourcefile
    monkeypatch.setattr(inspect, "getsourcefile", lambda module: str(edited) if module is M else real(module))
    assert reference_rows.metric_code_version() != original
