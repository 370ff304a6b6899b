"""Build a colorizer from its Hydra config, and rebuild one from a checkpoint or a release weight file."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

import colorization.modules  # noqa: F401  (importing the families registers their release formats)
from colorization.downloads import weights_path
from colorization.errors import ConfigError, DataError
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule
from colorization.releases import identify_release, release_names


def build_colorizer(model_cfg: DictConfig | dict, colorspace: str, name: str | None = None) -> ColorizerModule:
    """Instantiate `model_cfg` (a ``conf/model/*.yaml``) for `colorspace`, remembering the config
    and its `name` (the chosen option, ``pix2pix``; checkpoints keep both)."""
    model = instantiate(model_cfg, colorspace=colorspace)
    if not isinstance(model, ColorizerModule):
        raise ConfigError(f"model._target_={model_cfg['_target_']!r} is not a ColorizerModule")
    model.model_config = OmegaConf.to_container(OmegaConf.create(model_cfg), resolve=True)
    model.config_name = name
    return model


def load_colorizer(path: str | Path, map_location: str | torch.device = "cpu") -> ColorizerModule:
    """A ready colorizer (weights loaded, eval mode) from a file of one of two kinds.

    - a checkpoint written by `train.py`: rebuilt from the model config it carries;
    - a release file of a registered format (`colorization.releases`, e.g. Zhang et al.'s
      ``colorization_release_v2-9b330a0b.pth``), recognised by its keys and built as the family says;
      a registered release name (``eccv16``, `colorization.downloads`) means its cached file.

    The file is read with ``weights_only=True`` (never unpickled). Anything else raises `DataError`.
    """
    path = weights_path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for foreign or truncated files
        raise DataError(f"{path}: not a readable PyTorch file ({type(error).__name__})") from None
    info = checkpoint.get("colorization") if isinstance(checkpoint, dict) else None
    if not info or not info.get("model"):
        release = identify_release(checkpoint) if isinstance(checkpoint, dict) else None
        if release is not None:
            model = release.build(path)
            model.config_name = model.config_name or release.name
            return model.to(map_location).eval()
        raise DataError(
            f"{path}: neither a colorization checkpoint (no 'colorization' entry with the model config) "
            f"nor a recognised release state dict ({', '.join(release_names())})"
        )
    model_cfg = info["model"]
    try:
        module = get_class(model_cfg["_target_"])
    except Exception as error:  # hydra raises ImportError and others for a target that is gone
        raise DataError(f"{path}: its model._target_={model_cfg['_target_']!r} cannot be imported ({error})") from None
    if issubclass(module, ColorizerModule):
        model_cfg = module.checkpoint_config(model_cfg, path)
    model = build_colorizer(model_cfg, info["colorspace"], info.get("name"))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
