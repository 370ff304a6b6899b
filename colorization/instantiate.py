"""Hydra's `instantiate`, with the project's own errors passed through unwrapped."""

from __future__ import annotations

import re
from typing import Any

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from colorization.errors import ConfigError, find_user_error

UNKNOWN_ARGUMENT = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")
"""How Python reports a setting a class does not take (``+model.unknown_key=1``)."""


def instantiate(config: Any, key: str | None = None, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but a `ColorizationError` raised by a constructor surfaces as
    itself rather than inside Hydra's ``InstantiationException`` (whose message is multi-line),
    and a setting the class does not take is a `ConfigError` naming it (under `key`, e.g. ``model``)."""
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is not None:
            raise user_error from None
        unknown = UNKNOWN_ARGUMENT.search(str(error.__cause__ or error))
        if isinstance(error, InstantiationException) and unknown:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}{unknown.group(1)} has no setting {unknown.group(2)!r}; remove it or fix its spelling"
            ) from None
        raise


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every entry of a callbacks/logger group (entries set to null are skipped)."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]
