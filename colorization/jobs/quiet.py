"""Keep the terminal for what a person needs: targeted filters for library messages that are not the
user's business.

Each entry names one message and why it is dropped; everything else (every warning about the
user's data, config or hardware) still shows. `quiet_libraries` is called by the entry points,
never on import, so that the package imported on its own changes nothing.
"""

from __future__ import annotations

import logging
import warnings

LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
"""Where Lightning's `rank_zero_info` messages go (the name depends on which module set it last)."""

LIGHTNING_INFO_DROPPED = (
    "💡 Tip:",  # advertisements for Lightning's cloud services
    "GPU available:",  # the run's device is in the config line and the trainer's settings
    "TPU available:",
    "HPU available:",
    "`Trainer.fit` stopped: `max_epochs=",  # the planned end of every run
    "Restoring states from the checkpoint path at ",  # testing the best checkpoint: the summary names it
    "Loaded model weights from the checkpoint at ",
)
"""Starts of Lightning info messages that are dropped."""

WARNINGS_IGNORED = (
    # Lightning's own use of a torch API that torch deprecated; nothing a user can change
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # Lightning warns whenever a module converting batches after transfer meets a DataModule; here that
    # is by design (DataModules hand out uint8, the module converts on its device), not a conflict
    r".*overridden `on_after_batch_transfer` in `LightningModule`",
)
"""Regexes of warning messages that are ignored."""


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of `prefixes`."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


def quiet_libraries() -> None:
    """Install the filters (idempotent)."""
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(LIGHTNING_INFO_DROPPED))
    for message in WARNINGS_IGNORED:
        warnings.filterwarnings("ignore", message=message)
