"""evaluate.py end to end on the tiny photo set: two trained checkpoints + the reference rows."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import deltaE_cie76

from colorization.errors import ConfigError, DataError
from colorization.inference.base import Colorizer
from colorization.inference.loading import load_colorizer
from colorization.jobs.eval_results import OUTPUT_FILES
from colorization.jobs.evaluate import evaluate
from colorization.jobs.scoring import GRAY, GROUND_TRUTH, spread_positions
from colorization.jobs.sheets import HEADER_HEIGHT
from colorization.jobs.train import train
from colorization.metrics import image as M
from tests.helpers.configs import (
    REPO,
    TINY_SAMPLE,
    compose_config,
    evaluate_config,
    kaggle_evaluate_config,
    tiny_overrides,
)
from tests.helpers.datasets import write_kaggle_layout

MODELS = ("cnn", "model2")


@pytest.fixture(scope="module")
def checkpoints(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 1-epoch tiny fit of each of `MODELS`, trained once for this file: name -> last.ckpt."""
    paths = {}
    for name in MODELS:
        run = tmp_path_factory.mktemp(f"train_{name}") / "run"
        train(compose_config("train", [*tiny_overrides(sample_root, run), f"model={name}"]), model_name=name)
        paths[name] = run / "checkpoints" / "last.ckpt"
    return paths


def tiny_test_set(sample_root: Path) -> torch.Tensor:
    """The sample set's test images (the last ab file), whole, read straight from the arrays; Lab."""
    l_cv = np.load(sample_root / "l" / "gray_scale.npy")
    ab_cv = np.load(sample_root / "ab" / "ab" / "ab2.npy")
    l = torch.from_numpy(l_cv[-len(ab_cv) :].astype(np.float32) * 100 / 255).unsqueeze(1)
    ab = torch.from_numpy(ab_cv.astype(np.float32) - 128).permute(0, 3, 1, 2)
    return torch.cat([l, ab], dim=1)


def direct_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Every metric from the functional forms over the whole set at once (no batching, no Metric)."""
    lab = lambda x: x.permute(0, 2, 3, 1).double().numpy()  # noqa: E731
    error = M.ab_distance(pred, target).flatten().numpy()
    curve = [(error <= t).mean() for t in range(151)]
    cf_pred, cf_target = M.colorfulness(pred).mean().item(), M.colorfulness(target).mean().item()
    return {
        "mse": M.mse_rgb(pred, target).double().mean().item(),
        "psnr": M.psnr_rgb(pred, target).mean().item(),
        "ssim": M.ssim_rgb(pred, target).mean().item(),
        "cie76": deltaE_cie76(lab(pred), lab(target)).mean(),
        "ciede2000": M.delta_e_ciede2000(pred, target).mean().item(),
        "auc_ab": np.trapezoid(curve, dx=1.0) / 150,
        "colorfulness": cf_pred,
        "delta_cf": abs(cf_pred - cf_target),
    }


def test_evaluate_writes_every_output_and_matches_a_direct_recomputation(sample_root, checkpoints, tmp_path):
    out = tmp_path / "eval"
    names = {"cnn": str(checkpoints["cnn"]), "model2": str(checkpoints["model2"])}
    spec = "{" + ", ".join(f"{k}: '{v}'" for k, v in names.items()) + "}"
    overrides = ["comparison_images=3", "comparison_format=png", "data.batch_size=3"]
    cfg = evaluate_config(sample_root, out, f"checkpoints={spec}", *overrides)
    rows = evaluate(cfg)

    assert [row["model"] for row in rows] == [GRAY, "cnn", "model2", GROUND_TRUTH]
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(OUTPUT_FILES[:3] + ("comparison.png",))

    target = tiny_test_set(sample_root)
    size = TINY_SAMPLE["data.image_size"]
    assert target.shape == (TINY_SAMPLE["data.test_crops_per_photo"] * 2, 3, size, size)
    gray = torch.cat([target[:, :1], torch.zeros_like(target[:, 1:])], dim=1)
    with torch.no_grad():
        predictions = {name: load_colorizer(path).colorize_full(target[:, :1]) for name, path in names.items()}
    expected = {GRAY: direct_metrics(gray, target), GROUND_TRUTH: direct_metrics(target, target)}
    expected |= {name: direct_metrics(pred, target) for name, pred in predictions.items()}

    saved = json.loads((out / "results.json").read_text())
    with (out / "results.csv").open() as handle:
        table = list(csv.DictReader(handle))
    markdown = (out / "results.md").read_text()
    assert [row["model"] for row in saved] == [row["model"] for row in table] == [row["model"] for row in rows]
    for row, csv_row in zip(saved, table, strict=True):
        name = row["model"]
        assert row["data"] and row["split"] == "test" and row["images"] == len(target)
        assert row["image_size"] == f"{size}x{size}"
        if name in (GRAY, GROUND_TRUTH):
            assert row["checkpoint"] == ""
        else:
            assert Path(row["checkpoint"]).resolve() == Path(names[name]).resolve()
        for key, value in expected[name].items():
            if name == GROUND_TRUTH and key == "psnr":
                assert row[key] is None and csv_row[key] == "inf"  # identical images: infinite PSNR
                continue
            # float64 sums over batches of 3 vs one pass; the sRGB conversion is float32, so values
            # near 0 (the gray row's colorfulness, about 2e-3) agree to 1e-5 absolute
            assert row[key] == pytest.approx(value, rel=1e-6, abs=1e-5), (name, key)
            assert float(csv_row[key]) == pytest.approx(row[key], rel=1e-12), (name, key)
        assert f"| {name} | {row['mse']:.4f} | " in markdown
        speed = row["images_per_s"]
        assert (speed is None) == (name in (GRAY, GROUND_TRUTH)) and (speed is None or speed > 0)

    # the reference rows' invariants
    gray_row, truth_row = saved[0], saved[-1]
    chroma = torch.hypot(target[:, 1].double(), target[:, 2].double()).mean().item()
    assert gray_row["cie76"] == pytest.approx(chroma, rel=1e-6)
    assert truth_row["mse"] == 0 and truth_row["cie76"] == 0 and truth_row["auc_ab"] == 1
    assert gray_row["delta_cf"] == pytest.approx(truth_row["colorfulness"], abs=0.05)

    sheet = np.asarray(Image.open(out / "comparison.png"))
    assert sheet.shape == (HEADER_HEIGHT + 3 * size, 4 * size, 3)
    # the last column is the ground truth: the first, a middle and the last image of the split
    from colorization.jobs.sheets import to_uint8_rgb

    spread = spread_positions(len(target), 3)
    assert spread == [0, len(target) // 2, len(target) - 1]
    np.testing.assert_array_equal(sheet[HEADER_HEIGHT:, 3 * size :], np.concatenate(list(to_uint8_rgb(target[spread]))))

    logged = (out / "csv" / "metrics.csv").read_text()
    assert "eval/cnn/cie76" in logged and "eval/model2/auc_ab" in logged

    with pytest.raises(ConfigError, match="refusing to overwrite"):
        evaluate(cfg)


def test_no_sources_gives_the_two_reference_rows(sample_root, tmp_path):
    rows = evaluate(evaluate_config(sample_root, tmp_path / "eval", "crop_size=32", "~logger"))
    assert [row["model"] for row in rows] == [GRAY, GROUND_TRUTH]
    assert rows[0]["image_size"] == "32x32"
    assert json.loads((tmp_path / "eval" / "results.json").read_text())[1]["auc_ab"] == 1.0
    assert not (tmp_path / "eval" / "csv").exists()


def test_a_list_of_checkpoints_gets_unique_names_from_the_model_config(sample_root, checkpoints, tmp_path):
    both = f"checkpoints=[{checkpoints['cnn']},{checkpoints['cnn']},{checkpoints['model2']}]"
    rows = evaluate(evaluate_config(sample_root, tmp_path / "eval", both, "~logger", "comparison_images=1"))
    assert [row["model"] for row in rows] == [GRAY, "cnn", "cnn #2", "model2", GROUND_TRUTH]
    assert rows[1]["cie76"] == pytest.approx(rows[2]["cie76"], rel=1e-12)


def test_one_path_is_a_list_of_one_and_the_table_is_printed(sample_root, checkpoints, tmp_path, capsys):
    out = tmp_path / "eval"
    rows = evaluate(evaluate_config(sample_root, out, f"checkpoints={checkpoints['model2']}", "~logger"))
    assert [row["model"] for row in rows] == [GRAY, "model2", GROUND_TRUTH]
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.strip().startswith((GRAY, "model2", GROUND_TRUTH))]
    assert len(table) == 3, printed  # every row, the reference rows included
    assert f"{rows[1]['cie76']:.2f}" in table[1] and f"{rows[0]['cie76']:.2f}" in table[0]
    assert "CIE76 ΔE ↓" in printed and f"results: {out}" in printed
    # the default sheet is a JPEG (a PNG only when asked)
    assert (out / "comparison.jpg").is_file() and not (out / "comparison.png").exists()
    assert Image.open(out / "comparison.jpg").format == "JPEG"


def test_comparison_rows_are_spread_over_the_split():
    assert spread_positions(48, 8) == [0, 7, 13, 20, 27, 34, 40, 47]
    assert spread_positions(5, 8) == [0, 1, 2, 3, 4]  # fewer images than rows: all of them
    assert spread_positions(10, 1) == [0]


def test_a_split_the_model_cannot_colorize_is_a_data_error(sample_root, checkpoints, tmp_path, monkeypatch):
    # photos under a network's smallest input are colorized at that size, so a model fails on a split
    # only for reasons of its own (here: a network that refuses every input)
    def refuse(self, l, **kwargs):
        raise RuntimeError("Given input size: (12x1x1). Calculated output size: (12x0x0).\nmore detail")

    monkeypatch.setattr(Colorizer, "colorize_full", refuse)
    cfg = evaluate_config(sample_root, tmp_path / "eval", f"checkpoints=[{checkpoints['cnn']}]", "crop_size=16")
    with pytest.raises(DataError, match=r"cannot colorize the 16x16 images of the 'test' split \(Given input size"):
        evaluate(cfg)


def test_each_model_colorizes_each_batch_once(sample_root, checkpoints, tmp_path, monkeypatch):
    from colorization.inference.base import Colorizer

    calls = []
    colorize_full = Colorizer.colorize_full
    monkeypatch.setattr(
        Colorizer, "colorize_full", lambda self, l, **kw: calls.append(len(l)) or colorize_full(self, l, **kw)
    )
    cfg = evaluate_config(
        sample_root, tmp_path / "eval", f"checkpoints=[{checkpoints['cnn']}]", "logger=none", "data.batch_size=3"
    )
    rows = evaluate(cfg)
    test_images = TINY_SAMPLE["data.test_crops_per_photo"] * 2  # two held-out photos
    assert sum(calls) == test_images and len(calls) > 1, "the first batch's check is its prediction, not an extra pass"
    assert rows[1]["images_per_s"] > 0


def test_images_smaller_than_the_ssim_window_are_a_data_error(sample_root, tmp_path):
    with pytest.raises(DataError, match=r"8x8 images of the 'test' split are smaller than the 11x11 SSIM window"):
        evaluate(evaluate_config(sample_root, tmp_path / "eval", "crop_size=8", "~logger"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("crop_size=49", r"crop_size=49 does not fit the \(48, 48\) images"),
        ("split=holdout", r"split='holdout' is unknown"),
        ("device=gpu0", r"device='gpu0' is not a device"),
        ("checkpoints={gray: x.ckpt}", r"row name 'gray' is already used"),
        ("checkpoints=[missing.ckpt]", r"missing.ckpt: checkpoint not found"),
    ],
)
def test_bad_settings_are_one_line_errors(sample_root, tmp_path, override, message):
    with pytest.raises((ConfigError, DataError), match=message):
        evaluate(evaluate_config(sample_root, tmp_path / "eval", override, "~logger"))


def test_an_empty_split_is_a_data_error(tmp_path):
    root = write_kaggle_layout(tmp_path / "one_file", [6])  # one ab file: everything is training pool
    cfg = kaggle_evaluate_config(tmp_path, root, "data.crop_size=16", "data.num_workers=0", "data.val_fraction=0.2")
    with pytest.raises(DataError, match="the 'test' split holds no images"):
        evaluate(cfg)


def test_unset_study_table_checkpoint_is_a_config_error(tmp_path, kaggle_root):
    cfg = kaggle_evaluate_config(tmp_path, kaggle_root, "eval_experiment=study_table")
    assert list(cfg.checkpoints) == ["CNN", "ECCV16", "SIGGRAPH17", "CWGAN"]
    assert cfg.reported.study_cie76.ECCV16 == 0.155
    with pytest.raises(ConfigError, match="checkpoints.CNN is not set"):
        evaluate(cfg)


@pytest.mark.slow
def test_evaluate_py_reports_an_unidentifiable_file_in_one_line(tmp_path):
    bogus = tmp_path / "weights.pth"
    torch.save({"some": torch.zeros(2)}, bogus)
    result = subprocess.run(
        [sys.executable, "evaluate.py", f"checkpoints=[{bogus}]", f"paths.log_dir={tmp_path}/logs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("error: ") and str(bogus) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_wandb_logger_gets_the_table_and_the_comparison_sheet(sample_root, tmp_path):
    wandb_module = pytest.importorskip("wandb")
    save_dir = tmp_path / "wandb_logs"
    wandb = f"{{_target_: lightning.pytorch.loggers.WandbLogger, offline: true, save_dir: '{save_dir}', project: t}}"
    evaluate(evaluate_config(sample_root, tmp_path / "eval", "crop_size=16", "~logger", f"+logger.wandb={wandb}"))
    (run,) = (save_dir / "wandb").glob("offline-run-*")
    media = run / "files" / "media"
    assert list((media / "table" / "eval").glob("results_*.table.json"))
    assert list((media / "images" / "eval").glob("comparison_*.png"))
    assert wandb_module.run is None, "the W&B run must be finished so that the next job starts its own"


@pytest.mark.slow
def test_evaluate_py_writes_a_new_run_dir_and_records_its_command(sample_root, tmp_path):
    data = [f"{key}={value}" for key, value in TINY_SAMPLE.items() if key.startswith("data.")]
    overrides = [f"paths.data_dir={sample_root.parent}", *data, "crop_size=16", "~logger"]
    for _ in range(2):
        command = [sys.executable, "evaluate.py", f"paths.log_dir={tmp_path}", *overrides]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    runs = sorted((tmp_path / "evaluate" / "runs").iterdir())
    assert len(runs) == 2, "each run gets its own directory"
    markdown = (runs[0] / "results.md").read_text()
    assert f"Made by `python evaluate.py paths.log_dir={tmp_path} paths.data_dir=" in markdown
    assert "| gray | " in markdown and "| ground truth | " in markdown


@pytest.mark.slow
def test_study_table_adds_the_studys_columns_to_our_metrics(checkpoints, release_files, kaggle_root, tmp_path):
    # random-weight release files for ECCV16/SIGGRAPH17 and our tiny CNN for CNN and CWGAN: this
    # checks the table's wiring and that release files run through the harness, not the models
    stand_ins = [
        f"checkpoints.CNN={checkpoints['cnn']}",
        f"checkpoints.ECCV16={release_files['eccv16']}",
        f"checkpoints.SIGGRAPH17={release_files['siggraph17']}",
        f"checkpoints.CWGAN={checkpoints['model2']}",
    ]
    cfg = kaggle_evaluate_config(
        tmp_path,
        kaggle_root,
        "eval_experiment=study_table",
        "data.crop_size=16",
        "data.num_workers=0",
        "device=cpu",
        "~logger",
        *stand_ins,
    )
    rows = evaluate(cfg)
    assert [row["model"] for row in rows] == [GRAY, "CNN", "ECCV16", "SIGGRAPH17", "CWGAN", GROUND_TRUTH]
    assert rows[0]["images"] == 4 and rows[0]["image_size"] == "24x24"  # ab3.npy, whole images
    with (tmp_path / "eval" / "results.csv").open() as handle:
        table = {row["model"]: row for row in csv.DictReader(handle)}
    assert table["ECCV16"]["study_cie76"] == "0.155" and table["CNN"]["study_mse"] == "0.047"
    assert table[GRAY]["study_mse"] == "" and float(table["ECCV16"]["cie76"]) > 1.0
    markdown = (tmp_path / "eval" / "results.md").read_text()
    assert "| study_mse | study_cie76 |" in markdown and "| 0.047 | 41.18 |" in markdown

    # the release rows equal a direct run of the same file on the same whole images
    l_cv = np.load(kaggle_root / "l" / "gray_scale.npy")[-4:]
    ab_cv = np.load(kaggle_root / "ab" / "ab" / "ab3.npy")
    target = torch.cat(
        [
            torch.from_numpy(l_cv.astype(np.float32) * 100 / 255).unsqueeze(1),
            torch.from_numpy(ab_cv.astype(np.float32) - 128).permute(0, 3, 1, 2),
        ],
        dim=1,
    )
    for name, key in (("ECCV16", "eccv16"), ("SIGGRAPH17", "siggraph17")):
        with torch.no_grad():
            prediction = load_colorizer(release_files[key]).colorize_full(target[:, :1])
        expected = direct_metrics(prediction, target)
        for metric in ("cie76", "ciede2000", "auc_ab", "ssim"):
            assert float(table[name][metric]) == pytest.approx(expected[metric], rel=1e-5, abs=1e-5), (name, metric)
