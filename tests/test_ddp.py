"""trainer=ddp_cpu: two gloo processes really train through `python train.py`, and metrics are synchronised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from colorization.data.batches import to_lab_batch
from colorization.inference.loading import load_colorizer
from colorization.instantiate import instantiate
from colorization.metrics.image import CHEAP_METRICS, CIE76, FULL_METRICS, baseline_metrics
from tests.helpers.configs import compose_config
from tests.helpers.entry_points import cli_overrides, run_script

pytestmark = pytest.mark.slow  # two training processes, started as train.py

# what a single-process run of the regression module reports: its loss, throughput, the shared
# validation (cheap) and test (full) metric sets, and the gray baseline beside each
SINGLE_PROCESS_KEYS = {
    "train/loss",
    "train/loss_step",
    "train/loss_epoch",
    "train/images_per_sec",
    *(f"val/{name}" for name in CHEAP_METRICS),
    *(f"test/{name}" for name in FULL_METRICS),
    *(key for stage in ("val/", "test/") for key in baseline_metrics(stage)),
}


def test_ddp_cpu_trains_two_processes_on_disjoint_data_with_synced_metrics(sample_root: Path, tmp_path: Path):
    probe = tmp_path / "probe"
    args = [
        "trainer=ddp_cpu",
        "logger=csv",
        "trainer.max_epochs=2",
        "+callbacks.seen._target_=tests.helpers.callbacks.SeenIndices",
        f"+callbacks.seen.dirpath={probe}",
    ]
    result = run_script("train.py", [*cli_overrides(sample_root, tmp_path), *args], cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert "2 device(s) x 1 node(s)" in (run / "train.log").read_text(), "the global batch covers both processes"

    # both processes trained, on different shards that together cover the training set
    seen = [json.loads((probe / f"seen_rank{rank}.json").read_text()) for rank in (0, 1)]
    cfg = compose_config("train", cli_overrides(sample_root, tmp_path))
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    train_indices = {int(datamodule.train_set[i]["index"]) for i in range(len(datamodule.train_set))}
    assert seen[0] and seen[1]
    # DistributedSampler pads the shorter shard with at most one repeated image
    assert len(set(seen[0]) & set(seen[1])) <= 1
    assert set(seen[0]) | set(seen[1]) == train_indices

    # one checkpoint set and one metrics.json, written by rank 0
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and checkpoints[0].startswith("best_epoch") and checkpoints[1] == "last.ckpt"
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == SINGLE_PROCESS_KEYS

    # the test metric covers the whole test set (both shards), not rank 0's half
    best = next((run / "checkpoints").glob("best_epoch*.ckpt"))
    model = load_colorizer(best)
    datamodule.setup("test")
    cie76 = CIE76()
    with torch.no_grad():
        for batch in map(to_lab_batch, datamodule.test_dataloader()):
            cie76.update(model.colorize(batch["l"]), torch.cat([batch["l"], batch["ab"]], dim=1))
    assert metrics["test/cie76"] == pytest.approx(cie76.compute().item(), rel=1e-4)
    assert metrics["test/scored_images"] == len(datamodule.test_set), "the summary's count adds both shards"


@pytest.mark.slow
def test_ddp_cpu_tests_every_image_of_a_photo_folder_exactly_once(photo_folder: Path, tmp_path: Path):
    probe = tmp_path / "probe"
    folder_args = [
        "data=folder",
        f"data.root={photo_folder}",
        "data.crop_size=32",
        "data.batch_size=4",
        "data.eval_batch_size=2",
        "data.val_fraction=0.2",
        "data.test_fraction=0.2",  # 5 of the 25 readable photos: two processes cannot share them evenly
        "data.num_workers=0",
        "data.persistent_workers=false",
        "data.pin_memory=false",
    ]
    args = [
        *cli_overrides(None, tmp_path),
        *folder_args,
        "trainer=ddp_cpu",
        "logger=csv",
        "++trainer.limit_train_batches=1",
        "++trainer.limit_val_batches=1",
        "+callbacks.tested._target_=tests.helpers.callbacks.TestedIndices",
        f"+callbacks.tested.dirpath={probe}",
    ]
    result = run_script("train.py", args, cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    tested = [json.loads((probe / f"tested_rank{rank}.json").read_text()) for rank in (0, 1)]
    assert tested[0] and tested[1], "both processes tested"
    assert sorted(tested[0] + tested[1]) == list(range(5)), "every test image once, none repeated"
