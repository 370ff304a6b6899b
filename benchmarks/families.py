"""The model families the benchmarks measure, built from the project's own configs."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from colorization.inference.base import Colorizer
from colorization.modules.base import ColorizerModule
from colorization.modules.build import build_module

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
FAMILIES: dict[str, list[str]] = {
    "cnn": ["model=cnn"],
    "pix2pix": ["model=pix2pix"],
    "cwgan": ["model=cwgan"],
    "eccv16": ["model=eccv16"],
    "siggraph17": ["model=siggraph17"],
}
"""Family -> train.py overrides of its default config (each family's own defaults)."""


def train_config(overrides: list[str], name: str = "train") -> DictConfig:
    """``conf/<name>.yaml`` (train.py's by default) composed with `overrides`, as the entry point would see it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def build_from(overrides: list[str]) -> ColorizerModule:
    """The training module ``train.py OVERRIDES`` would train, freshly initialised (random weights), in train mode."""
    cfg = train_config(overrides)
    return build_module(cfg.model, cfg.colorspace.name)


def build(family: str) -> ColorizerModule:
    """A freshly initialised training module of `family` (random weights), in train mode."""
    return build_from(FAMILIES[family])


def build_colorizer(family: str) -> Colorizer:
    """The inference colorizer of a freshly built `family`, in eval mode (random weights: speed does not depend
    on them)."""
    return build(family).colorizer.eval()


def random_batch(batch: int, size: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A float Lab batch of plausible ranges: ``l`` (B, 1, s, s) in [0, 100], ``ab`` (B, 2, s, s) in [-30, 30]."""
    generator = torch.Generator().manual_seed(0)
    l = torch.rand(batch, 1, size, size, generator=generator) * 100
    ab = (torch.rand(batch, 2, size, size, generator=generator) - 0.5) * 60
    return {"l": l.to(device), "ab": ab.to(device)}
