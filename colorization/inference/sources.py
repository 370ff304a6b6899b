"""Row sources: the colorizers a user names by file (a training checkpoint of any family, or a
release weight file `load_colorizer` recognises), loaded once with a unique row name each."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from colorization.errors import ConfigError
from colorization.inference.base import Colorizer
from colorization.inference.loading import load_colorizer

__all__ = ["Source", "default_name", "load_colorizer", "load_sources", "parse_checkpoints"]


@dataclass
class Source:
    """One row of the table: a loaded colorizer, or a reference row (``model is None``)."""

    name: str
    checkpoint: str
    model: Colorizer | None = None


def parse_checkpoints(checkpoints: str | Sequence[str] | Mapping[str, str] | None) -> list[tuple[str | None, str]]:
    """``checkpoints`` as (row name or None, path) pairs: a path, a list of paths, or a mapping name -> path."""
    if not checkpoints:
        return []
    if isinstance(checkpoints, str):
        return [(None, checkpoints)]  # one path is a list of one
    if isinstance(checkpoints, Mapping):
        pairs = []
        for name, path in checkpoints.items():
            if path in (None, "", "???"):
                raise ConfigError(f"checkpoints.{name} is not set; expected the path of a checkpoint or weight file")
            pairs.append((str(name), str(path)))
        return pairs
    return [(None, str(path)) for path in checkpoints]


def default_name(model: Colorizer) -> str:
    """A row name from the model itself (`Colorizer.display_name`)."""
    return model.display_name


def load_sources(checkpoints: Any, device: torch.device, reserved: Collection[str] = ()) -> list[Source]:
    """Load every checkpoint (errors name the file) and give each row a unique name, none of `reserved`."""
    sources: list[Source] = []
    taken = set(reserved)
    for name, path in parse_checkpoints(checkpoints):
        if name in taken:
            raise ConfigError(f"checkpoints.{name}: the row name {name!r} is already used")
        model = load_colorizer(path, map_location="cpu", kind="checkpoint").to(device).eval()
        if name is None:
            base = name = default_name(model)
            number = 2
            while name in taken:
                name, number = f"{base} #{number}", number + 1
        taken.add(name)
        sources.append(Source(name=name, checkpoint=path, model=model))
    return sources
