"""The release table: official weight files published by a model's authors, by the name a user types.

``--model eccv16`` (or ``model.weights=eccv16``) means the file of that name: where it is published,
what it is called in the cache, its size and digest where the authors published them, the family
that builds it, and the licence of the weights. `identify` tells which family a weight file
belongs to from its keys, whatever the file is called; each family recognises its own files
(`release_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from colorization.inference.base import Colorizer
from colorization.inference.ddcolor import DDColorColorizer
from colorization.inference.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer


@dataclass(frozen=True)
class Release:
    """One published weight file."""

    name: str
    """What users type: ``--model eccv16``."""
    url: str
    filename: str
    """Its name in the cache folder."""
    family: type[Colorizer]
    """The colorizer that runs it (its `release_settings` reads the file's own settings)."""
    licence: str
    """The licence the authors publish the weights under."""
    size: int | None = None
    """Bytes, where published."""
    sha256_prefix: str = ""
    """The start of the file's sha256 (hex), where published (Zhang et al.'s file names carry 8 digits)."""
    description: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    """Colorizer settings beyond those the file itself tells (none so far)."""


ZHANG_URL = "https://colorizers.s3.us-east-2.amazonaws.com/"
"""Where the official `colorizers` package fetches Zhang et al.'s weights from."""
DDCOLOR_URL = "https://huggingface.co/piddnad/{repo}/resolve/main/pytorch_model.bin"
"""The authors' model-hub files (their MODEL_ZOO.md lists four models); no size or digest is published."""
ZHANG_LICENCE = "BSD-2-Clause"
DDCOLOR_LICENCE = "Apache-2.0"


def _ddcolor(name: str, repo: str) -> Release:
    return Release(
        name,
        DDCOLOR_URL.format(repo=repo),
        f"{repo}.pt",
        DDColorColorizer,
        DDCOLOR_LICENCE,
        description=f"DDColor {repo}",
    )


RELEASES: dict[str, Release] = {
    release.name: release
    for release in (
        Release("eccv16", ZHANG_URL + "colorization_release_v2-9b330a0b.pth", "colorization_release_v2-9b330a0b.pth",
                ECCV16Colorizer, ZHANG_LICENCE, 128_976_165, "9b330a0b", "Zhang et al. ECCV16"),
        Release("siggraph17", ZHANG_URL + "siggraph17-df00044c.pth", "siggraph17-df00044c.pth",
                SIGGRAPH17Colorizer, ZHANG_LICENCE, 136_787_426, "df00044c", "Zhang et al. SIGGRAPH17"),
        _ddcolor("ddcolor", "ddcolor_modelscope"),  # the authors' default for photos outside ImageNet
        _ddcolor("ddcolor_modelscope", "ddcolor_modelscope"),
        _ddcolor("ddcolor_paper", "ddcolor_paper"),
        _ddcolor("ddcolor_artistic", "ddcolor_artistic"),
        _ddcolor("ddcolor_tiny", "ddcolor_paper_tiny"),
        _ddcolor("ddcolor_paper_tiny", "ddcolor_paper_tiny"),
    )
}  # fmt: skip

FAMILIES: tuple[type[Colorizer], ...] = (ECCV16Colorizer, SIGGRAPH17Colorizer, DDColorColorizer)
"""The families whose authors publish weight files (each recognises its own by their keys)."""


def identify(state_dict: Mapping[str, Tensor]) -> tuple[type[Colorizer], dict[str, Any]] | None:
    """(family, its settings) of the one family that recognises `state_dict`; None when none or several do."""
    matches = [(family, family.release_settings(state_dict)) for family in FAMILIES]
    matches = [(family, settings) for family, settings in matches if settings is not None]
    return matches[0] if len(matches) == 1 else None


def family_names() -> list[str]:
    """The families that read release files, for error messages."""
    return [family.__name__ for family in FAMILIES]
