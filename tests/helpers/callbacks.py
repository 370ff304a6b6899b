"""Lightning callbacks that tests add to a train.py subprocess on its command line (the subprocess imports them)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import lightning as L


class SignalAtStep(L.Callback):
    """Sends `signal_name` to this very process once training reaches global step `step`.

    ``SIGKILL`` is a crash nothing can catch (a power cut, the OOM killer); ``SIGTERM`` is what a
    scheduler or ``kill`` sends. Added on the command line:
    ``+callbacks.crash._target_=tests.helpers.callbacks.SignalAtStep +callbacks.crash.step=5``.
    """

    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step = step
        self.signal = getattr(signal, signal_name)
        self.sent = False

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        if not self.sent and trainer.global_step >= self.step:
            self.sent = True
            os.kill(os.getpid(), self.signal)


class SeenIndices(L.Callback):
    """Writes the image indices each rank trained on in the first epoch to ``<dirpath>/seen_rank<r>.json``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.seen: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 0:
            self.seen += batch["index"].tolist()

    def on_train_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        (self.dirpath / f"seen_rank{trainer.global_rank}.json").write_text(json.dumps(self.seen))


class TestedIndices(L.Callback):
    """Test probe: writes the test image indices each rank scored to ``<dirpath>/tested_rank<r>.json``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.tested: list[int] = []

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.tested += batch["index"].tolist()

    def on_test_end(self, trainer, pl_module) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        (self.dirpath / f"tested_rank{trainer.global_rank}.json").write_text(json.dumps(self.tested))
