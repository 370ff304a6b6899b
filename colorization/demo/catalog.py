"""What the demo offers: the colorizers found in a folder, and scikit-image's photos as examples.

Every candidate file is loaded once at start-up through the project's loader
(`colorization.inference.sources.load_sources`), so the page lists only what really loads; files that do
not are skipped with one line each. Loaded models are kept in a small cache: a folder of many
large checkpoints does not have to fit in memory at once.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorization.errors import ColorizationError, ConfigError
from colorization.files.builtin_photos import TEST_PHOTOS, load_photo
from colorization.inference.base import Colorizer, takes_hints
from colorization.inference.sources import load_colorizer, load_sources

MODEL_SUFFIXES = frozenset({".ckpt", ".pth", ".pt"})
"""Training checkpoints (``.ckpt``) and release weight files (``.pth``, ``.pt``)."""
MODELS_KEPT = 2
"""How many loaded colorizers stay in memory; others are loaded again when chosen."""
EXAMPLE_PHOTOS = ("camera", *TEST_PHOTOS)
"""scikit-image's black-and-white cameraman, and the colour photos held out of the built-in training set."""


@dataclass(frozen=True)
class Entry:
    """One colorizer on the page."""

    key: str
    """Its id in the page and the API: the file's path relative to the models folder."""
    name: str
    """A unique display name (`Colorizer.display_name`, numbered when repeated)."""
    path: Path
    hints: bool
    """Whether it takes colour hints (SIGGRAPH17)."""
    temperature: float | None
    """The annealed-mean temperature of a model that decodes by it (ECCV16): the slider's start; else None."""
    palette: bool
    """Whether it can suggest colours at a point (`colour_probabilities`)."""

    def describe(self) -> dict:
        """The entry as the page's JSON."""
        return {
            "key": self.key,
            "name": self.name,
            "file": self.path.name,
            "hints": self.hints,
            "temperature": self.temperature,
            "palette": self.palette,
        }


def describe_model(key: str, name: str, path: Path, model: Colorizer) -> Entry:
    """The `Entry` of a loaded `model`: what the page may offer for it."""
    temperature = getattr(model, "temperature", None)
    if getattr(model, "decode", "classification") != "classification":
        temperature = None  # SIGGRAPH17 regresses its colours; a temperature would switch it to its class head
    return Entry(
        key=key,
        name=name,
        path=path,
        hints=takes_hints(model),
        temperature=float(temperature) if temperature is not None else None,
        palette=takes_hints(model) and hasattr(model, "colour_probabilities"),
    )


def find_model_files(folder: Path) -> list[Path]:
    """Candidate colorizer files under `folder` (any depth), in a stable order."""
    if not folder.is_dir():
        raise ConfigError(f"--models {folder}: no such folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)


class Catalog:
    """The colorizers of a models folder, by key; loads them on demand and keeps `MODELS_KEPT`."""

    def __init__(self, entries: list[Entry], device: torch.device, kept: int = MODELS_KEPT) -> None:
        if not entries:
            raise ConfigError("no colorizer to offer")
        self.entries = {entry.key: entry for entry in entries}
        self.device, self.kept = device, kept
        self._loaded: OrderedDict[str, Colorizer] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def scan(cls, folder: str | Path, device: torch.device, warn: Callable[[str], None] = print) -> Catalog:
        """Load every candidate file under `folder`; `warn` gets one line per file that is skipped."""
        folder = Path(folder)
        entries: list[Entry] = []
        catalog_models: list[tuple[str, Colorizer]] = []
        taken: set[str] = set()
        files = find_model_files(folder)
        for path in files:
            try:
                (source,) = load_sources([str(path)], torch.device("cpu"), reserved=taken)
            except ColorizationError as error:
                warn(f"skipped: {error}")
                continue
            taken.add(source.name)
            key = path.relative_to(folder).as_posix()
            entries.append(describe_model(key, source.name, path, source.model))
            catalog_models.append((key, source.model))
        if not entries:
            suffixes = ", ".join(sorted(MODEL_SUFFIXES))
            raise ConfigError(
                f"--models {folder}: no colorizer found ({len(files)} {suffixes} file(s) checked); expected "
                "train.py checkpoints or release weight files"
            )
        catalog = cls(entries, device)
        for key, model in catalog_models[-catalog.kept :]:
            catalog._keep(key, model)
        return catalog

    def model(self, key: str) -> Colorizer:
        """The loaded colorizer of `key` (loaded again if it left the cache)."""
        entry = self.entries.get(key)
        if entry is None:
            raise ConfigError(f"model {key!r} is not offered; choose one of {sorted(self.entries)}")
        with self._lock:
            model = self._loaded.get(key)
            if model is None:
                model = load_colorizer(entry.path)
            self._keep(key, model)
            return model

    def _keep(self, key: str, model: Colorizer) -> None:
        model.to(self.device).eval()
        self._loaded[key] = model
        self._loaded.move_to_end(key)
        while len(self._loaded) > self.kept:
            self._loaded.popitem(last=False)

    def describe(self) -> list[dict]:
        return [entry.describe() for entry in self.entries.values()]


@cache
def example_png(name: str) -> bytes:
    """A built-in photo (`EXAMPLE_PHOTOS`) as PNG bytes."""
    if name not in EXAMPLE_PHOTOS:
        raise ConfigError(f"example {name!r} is unknown; expected one of {list(EXAMPLE_PHOTOS)}")
    pixels = np.ascontiguousarray(load_photo(name))
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
