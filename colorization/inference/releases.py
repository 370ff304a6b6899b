"""A registry of recognised release files: official weights published by a model's authors.

A release is a plain state dict whose keys identify the network it belongs to. Each family
registers its formats from its own module (`register_release`), saying which keys identify the
file and how to build a ready colorizer from it; the generic loader
(`colorization.inference.loading.load_colorizer`) asks `identify_release` and never names a family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:  # only for the annotation; the families import this module
    from colorization.modules.base import ColorizerModule


@dataclass(frozen=True)
class ReleaseFormat:
    """One kind of release file."""

    name: str
    """Short name, e.g. ``eccv16``."""
    identify: Callable[[Mapping[str, Tensor]], bool]
    """True when a state dict has this release's layout (judged by its keys)."""
    build: Callable[[Path], ColorizerModule]
    """A ready colorizer (weights loaded, eval mode) from the release file at a path."""


_FORMATS: dict[str, ReleaseFormat] = {}


def register_release(fmt: ReleaseFormat) -> None:
    """Make `fmt` known to `identify_release`; a name can be registered once."""
    registered = _FORMATS.get(fmt.name)
    if registered is not None and registered is not fmt:
        raise ValueError(f"a release format named {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt


def identify_release(state_dict: Mapping[str, Tensor]) -> ReleaseFormat | None:
    """The one registered format that recognises `state_dict`; None when none or several do."""
    matches = [fmt for fmt in _FORMATS.values() if fmt.identify(state_dict)]
    return matches[0] if len(matches) == 1 else None


def release_names() -> list[str]:
    """Names of the registered formats, in registration order (for error messages)."""
    return list(_FORMATS)
