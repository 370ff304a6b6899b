"""Lightning callbacks that tests add to a train.py subprocess on its command line (the subprocess imports them)."""

from __future__ import annotations

import os
import signal

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
