"""Colorize photos and films: ``colorize INPUT... --model SOURCE`` and the Python API behind it.

A photo's L (full resolution) is shrunk to the model's working size, colorized there, and the
predicted ab is upsampled and joined to the original L (`Colorizer.colorize_full`'s contract), so
every output has the input's exact size and luminance. For a folder the work is a pipeline
(`colorize.photos`): DataLoader workers decode and shrink photos, the main thread batches photos
of one working size and runs the network on the device, and writer threads build and write each
output (atomically: a killed run leaves no half-written image, and a rerun skips what is done).
Films among the inputs are colorized frame by frame into MP4s that keep their luma, timing and
sound (`colorize.video`).

Python::

    from colorization.colorize import colorize_image, colorize_paths, colorize_video
    colour = colorize_image(Image.open("old.jpg"), "eccv16")
    tally = colorize_paths(["scans/"], "eccv16", "colorized", recursive=True)
    film = colorize_video("old.mp4", "eccv16")  # colorized/old.mp4

Importing this package is cheap (the command line answers ``--help`` without loading torch); the
API's functions are imported from `colorize.photos` and `colorize.video` when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = ("png", "jpg", "same")
"""``--format``: PNG, JPEG, or each photo's own format."""
DEFAULT_OUT = "colorized"
DEFAULT_MAX_MEGAPIXELS = 50.0
"""The largest photo colorized by default (``--max-megapixels``), by the command and the web page alike."""
FAILED_EXIT_CODE = 1
"""The exit code of a run in which some photo failed (2 is a usage error: nothing was colorized)."""

API = {
    "colorize_image": "colorization.colorize.photos",
    "colorize_paths": "colorization.colorize.photos",
    "colorize_video": "colorization.colorize.video",
}
"""The public functions and the module that defines each."""
__all__ = ["DEFAULT_MAX_MEGAPIXELS", "DEFAULT_OUT", "FAILED_EXIT_CODE", "FORMATS", *API]


def __getattr__(name: str) -> Any:
    if name in API:
        return getattr(importlib.import_module(API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
