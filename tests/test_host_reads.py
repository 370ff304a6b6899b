"""A training step of train.py's setup reads no tensor value on the host.

On a GPU each such read (``loss.item()``, ``float(t)``, ``if t:``) makes the CPU wait for the step's
queued kernels before it can queue the next step's, which a plain PyTorch loop never does. The
reads are counted here on the CPU (`tests.helpers.host_reads.HostReads`) for every model config,
between the third and the last batch of a short run with train.py's callbacks and loggers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from colorization.errors import ConfigError
from colorization.jobs.callbacks import Throughput, TimedProgressBar
from colorization.jobs.checkpointing import NonFiniteGuard
from colorization.jobs.train import train
from tests.helpers.configs import MODEL_CONFIGS, SMOKE_SIZE, compose_config, tiny_overrides
from tests.helpers.host_reads import HostReads
from tests.helpers.marks import with_slow

BATCHES = 6


# the regression CNNs take a second each; the other families 2 to 13 s (make test-fast leaves them out)
@pytest.mark.parametrize(
    "name", with_slow(MODEL_CONFIGS, ["cwgan", "ddcolor", "eccv16", "pix2pix", "siggraph17", "siggraph17_regression"])
)
def test_steady_training_steps_read_nothing_on_the_host(name, sample_root, tmp_path: Path, monkeypatch):
    size = SMOKE_SIZE.get(name, 32)
    data = [] if size <= 32 else [f"data.image_size={size}", f"data.crop_size={size}", f"paths.data_dir={tmp_path}"]
    cfg = compose_config(
        "train",
        [
            *tiny_overrides(sample_root, tmp_path / "run"),
            f"model={name}",
            *data,
            "data.batch_size=2",
            "data.num_workers=1",  # the crops are drawn in a worker process, as in a GPU run
            f"++trainer.limit_train_batches={BATCHES}",
            "++trainer.limit_val_batches=0",
            "trainer.log_every_n_steps=1000",  # Lightning's logging reads values; on a GPU every 50 steps
            # the guard reads every batch on the CPU, where it costs nothing; on a GPU every 50 (checked below)
            f"++callbacks.non_finite_guard.check_every_n_steps={BATCHES}",
            "test=false",
        ],
    )
    reads = HostReads()
    monkeypatch.setattr(Throughput, "on_train_batch_start", lambda *args: reads.mark(str(args[-1])))
    with reads:
        train(cfg)
    steady = reads.between("2", str(BATCHES - 1))
    assert steady == [], f"{name}: host reads in steps 2-{BATCHES - 2}: {steady}"


def test_the_guard_reads_the_gpu_every_50_steps_and_the_cpu_every_step():
    assert NonFiniteGuard().interval(torch.device("cuda")) == 50
    assert NonFiniteGuard().interval(torch.device("cpu")) == 1
    assert NonFiniteGuard(check_every_n_steps=7).interval(torch.device("cuda")) == 7
    with pytest.raises(ConfigError, match=r"callbacks.non_finite_guard.check_every_n_steps=0 is out of range"):
        NonFiniteGuard(check_every_n_steps=0)


def test_the_progress_bar_reads_the_losses_by_time_not_at_every_batch():
    class Trainer:  # what the bar reads from a trainer
        callback_metrics = {"train/loss": torch.tensor(0.5), "train/g_loss": torch.tensor(2.0), "val/mse": 1.0}
        progress_bar_metrics: dict = {}
        loggers: list = []

    bar = TimedProgressBar(min_interval_s=3600)
    with HostReads() as reads:
        shown = [bar.get_metrics(Trainer(), None) for _ in range(5)]
    assert shown[0] == {"loss": "0.5", "g_loss": "2"} and all(s == shown[0] for s in shown)
    assert len(reads.events) == 2, "two losses read once, not at every batch"
