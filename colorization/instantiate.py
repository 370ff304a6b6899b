"""Hydra's `instantiate`, with the project's own errors passed through unwrapped."""

from __future__ import annotations

from typing import Any

import hydra.utils
from omegaconf import DictConfig

from colorization.errors import find_user_error


def instantiate(config: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but a `ColorizationError` raised by a constructor surfaces as
    itself rather than inside Hydra's ``InstantiationException`` (whose message is multi-line)."""
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise
        raise user_error from None


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every entry of a callbacks/logger group (entries set to null are skipped)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]
