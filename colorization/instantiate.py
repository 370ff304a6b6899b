"""Hydra's `instantiate`, with the project's own errors passed through unwrapped, and the table of moved
``_target_``s: a config or checkpoint written before a class moved still names where it lives now."""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterator
from typing import Any

import hydra.utils
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from colorization.errors import ConfigError, find_user_error

UNKNOWN_ARGUMENT = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")
"""How Python reports a setting a class does not take (``+model.unknown_key=1``)."""

MOVED_MODULES = {
    "colorization.models": "colorization.networks",
    "colorization.losses": "colorization.modules.losses",
    "colorization.callbacks": "colorization.jobs.callbacks",
    "colorization.checkpointing": "colorization.jobs.checkpointing",
    "colorization.loggers": "colorization.jobs.loggers",
    "colorization.runs": "colorization.jobs.run_dirs",
}
"""Modules whose classes a stored config may name, before the package was split into layers -> now."""
RENAMED_CLASSES = {
    "colorization.networks.ECCV16Colorizer": "colorization.networks.ECCV16Net",
    "colorization.networks.SIGGRAPH17Colorizer": "colorization.networks.SIGGRAPH17Net",
    "colorization.networks.DDColorColorizer": "colorization.networks.DDColorNet",
}
"""Classes that were renamed (the networks; the colorizer names now mean the inference classes)."""
RUN_OPTIONS = ("compile",)
"""Model config keys that say how to run the model, not what it is: not stored, not compared."""


def target_of(cls: type) -> str:
    """The ``_target_`` that names `cls` (``package.module.Class``)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def current_target(target: str) -> str:
    """Where the class a stored ``_target_`` names lives now (`target` itself when it did not move)."""
    for old, new in MOVED_MODULES.items():
        if target.startswith(old + "."):
            target = new + target[len(old) :]
            break
    return RENAMED_CLASSES.get(target, target)


def update_targets(config: Any) -> list[tuple[str, str]]:
    """Rewrite, in place, every moved ``_target_`` in a nested config (dicts, lists, OmegaConf nodes);
    returns the (old, new) pairs rewritten."""
    moved = []
    for node in _nodes_with_targets(config):
        old = str(node["_target_"])
        new = current_target(old)
        if new != old:
            node["_target_"] = new
            moved.append((old, new))
    return moved


def _nodes_with_targets(node: Any) -> Iterator[Any]:
    if isinstance(node, dict | DictConfig):
        if "_target_" in node and isinstance(node["_target_"], str):
            yield node
        for value in node.values():
            yield from _nodes_with_targets(value)
    elif isinstance(node, list | tuple) or OmegaConf.is_list(node):
        for value in node:
            yield from _nodes_with_targets(value)


def instantiate(config: Any, key: str | None = None, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but a `ColorizationError` raised by a constructor surfaces as
    itself rather than inside Hydra's ``InstantiationException`` (whose message is multi-line),
    a setting the class does not take is a `ConfigError` naming it (under `key`, e.g. ``model``),
    and a moved ``_target_`` is followed to where the class lives now, with a warning naming both."""
    if any(current_target(str(node["_target_"])) != node["_target_"] for node in _nodes_with_targets(config)):
        # a copy (resolved: its interpolations may point outside it), so the caller's config stays as it is
        config = OmegaConf.to_container(config, resolve=True) if OmegaConf.is_config(config) else copy.deepcopy(config)
        for old, new in update_targets(config):
            warnings.warn(f"_target_ {old} has moved to {new}; update your config", FutureWarning, stacklevel=2)
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
