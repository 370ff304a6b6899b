"""Lightning Trainers for tests that fit a module directly, without train.py's job around it."""

from __future__ import annotations

import lightning as L


def cpu_trainer(**kwargs) -> L.Trainer:
    """A quiet CPU Trainer: no logger, checkpoints, progress bar, summary or validation unless `kwargs` ask."""
    options = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
        "limit_val_batches": 0,
    }
    return L.Trainer(**(options | kwargs))
