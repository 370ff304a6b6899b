"""Evaluation protocols of the colorization literature: which images of a folder, at what size.

Papers report numbers on fixed image sets prepared in fixed ways; two results are comparable
only when both are. Each protocol names its source. `evaluate.py data=<protocol> data.root=DIR`
uses one (``conf/data/<protocol>.yaml``), and the results table states it.

Larsson et al.'s ``ctest10k`` (10,000 ImageNet validation images, used by Zhang et al. 2017 and
iColoriT) is not here: its list of names is published only on its authors' web page, which this
project cannot reach to ship a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from colorization.data.image_index import ImageRecord
from colorization.errors import ConfigError, DataError

RESIZE_CENTRE_CROP, RESIZE = "resize_centre_crop", "resize"
"""Evaluation geometries: shorter side to `size` then centre crop `size`; or a plain resize to `size` x `size`."""


@dataclass(frozen=True)
class Protocol:
    """A published evaluation setting: a selection of the folder's images and how they are resized."""

    name: str
    geometry: str
    size: int
    source: str
    """Where the setting comes from, quoted in the results table."""
    select: Callable[[Sequence[ImageRecord], str], list[ImageRecord]]

    @property
    def description(self) -> str:
        how = (
            f"shorter side to {self.size}, centre crop {self.size}x{self.size}"
            if self.geometry == RESIZE_CENTRE_CROP
            else f"plain resize to {self.size}x{self.size}"
        )
        return f"{self.name}: {how}; {self.source}"


def first_by_name(count: int) -> Callable[[Sequence[ImageRecord], str], list[ImageRecord]]:
    """The first `count` images by file name (all of them must be there)."""

    def select(records: Sequence[ImageRecord], folder: str) -> list[ImageRecord]:
        chosen = sorted(records, key=lambda r: r.path.rsplit("/", 1)[-1])[:count]
        if len(chosen) < count:
            raise DataError(
                f"{folder}: the protocol takes the first {count} images by name but only {len(chosen)} are readable"
            )
        return chosen

    return select


def every_image(records: Sequence[ImageRecord], folder: str) -> list[ImageRecord]:
    """All readable images, in path order."""
    return list(records)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "imagenet_val5k",
            RESIZE_CENTRE_CROP,
            256,
            "the first 5,000 ILSVRC2012 validation images by file name (ILSVRC2012_val_00000001.JPEG ...), "
            "as CT2 (Weng et al. 2022) and DDColor (Kang et al. 2023) evaluate",
            first_by_name(5000),
        ),
        Protocol(
            "resize256",
            RESIZE,
            256,
            "every image resized to 256x256 regardless of aspect ratio, as ColorFormer (Ji et al. 2022) and "
            "DDColor evaluate COCO-Stuff and ADE20K validation images",
            every_image,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`; a `ConfigError` lists the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"data.protocol={name!r} is unknown; expected one of {sorted(PROTOCOLS)}") from None
