"""Build a colorizer from its Hydra config, and rebuild one from a training checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from colorization.errors import ConfigError, DataError
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule


def build_colorizer(model_cfg: DictConfig | dict, colorspace: str) -> ColorizerModule:
    """Instantiate `model_cfg` (a ``conf/model/*.yaml``) for `colorspace`, remembering the config."""
    model = instantiate(model_cfg, colorspace=colorspace)
    if not isinstance(model, ColorizerModule):
        raise ConfigError(f"model._target_={model_cfg['_target_']!r} is not a ColorizerModule")
    model.model_config = OmegaConf.to_container(OmegaConf.create(model_cfg), resolve=True)
    return model


def load_colorizer(path: str | Path, map_location: str | torch.device = "cpu") -> ColorizerModule:
    """Rebuild a trained colorizer from a checkpoint written by `train.py` (weights loaded, eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    info = checkpoint.get("colorization") if isinstance(checkpoint, dict) else None
    if not info or not info.get("model"):
        raise DataError(f"{path}: not a colorization checkpoint (no 'colorization' entry with the model config)")
    model = build_colorizer(info["model"], info["colorspace"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
