"""CPU threads per process (jobs/threads.py): the physical cores left by the loader workers, one thread
in each worker, a node's cores shared by its training processes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from colorization.errors import ConfigError
from colorization.jobs.threads import default_num_threads, physical_cores, set_num_threads
from colorization.jobs.train import build_trainer, use_threads
from tests.helpers.configs import compose_config


def test_threads_default_to_the_physical_cores_left_by_the_workers(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        cores = physical_cores()
        assert 1 <= cores <= (torch.multiprocessing.cpu_count() or 1)
        assert default_num_threads(0) == cores and default_num_threads(cores + 3) == 1
        assert default_num_threads(0, processes=2) == max(1, cores // 2)
        assert set_num_threads(None, 0) == cores == torch.get_num_threads()
        assert set_num_threads(1, 5) == 1 == torch.get_num_threads()
        with pytest.raises(ConfigError, match=r"^trainer.num_threads=0: expected a positive number"):
            set_num_threads(0)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # set by the user: it wins over the default
        assert set_num_threads(None, 0) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


class _Threads(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return torch.get_num_threads()


def test_loader_workers_compute_with_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        threads = next(iter(DataLoader(_Threads(), batch_size=2, num_workers=1)))
    finally:
        torch.set_num_threads(before)
    assert threads.tolist() == [1, 1]


def test_training_processes_of_a_node_share_its_cores(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cfg = compose_config("train", ["trainer=ddp_cpu", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"])
    trainer = build_trainer(cfg.trainer, logger=False)  # `num_threads` is ours: not passed to the Trainer
    before = torch.get_num_threads()
    try:
        assert trainer.num_devices == 2
        assert use_threads(trainer, None, num_workers=0) == max(1, physical_cores() // 2)
        assert use_threads(trainer, 3, num_workers=0) == 3 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
