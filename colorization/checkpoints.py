"""Build a colorizer from its Hydra config, and rebuild one from a checkpoint or an official weight file."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from colorization.errors import ConfigError, DataError
from colorization.inference import compile_networks
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule
from colorization.modules.zhang import ZhangColorizer, release_config
from colorization.weights import official_kind


def build_colorizer(model_cfg: DictConfig | dict, colorspace: str) -> ColorizerModule:
    """Instantiate `model_cfg` (a ``conf/model/*.yaml``) for `colorspace`, remembering the config.

    ``compile: true`` compiles the model's networks (`torch.compile`); it says how to run the
    model, not what the model is, so it is not part of the remembered config.
    """
    config = OmegaConf.to_container(OmegaConf.create(model_cfg), resolve=True)
    compile_ = config.pop("compile", False)
    if not isinstance(compile_, bool):
        raise ConfigError(f"model.compile={compile_!r}: expected true or false")
    model = instantiate(config, colorspace=colorspace)
    if not isinstance(model, ColorizerModule):
        raise ConfigError(f"model._target_={model_cfg['_target_']!r} is not a ColorizerModule")
    model.model_config = config
    if compile_:
        compile_networks(model)
    return model


def load_colorizer(path: str | Path, map_location: str | torch.device = "cpu") -> ColorizerModule:
    """A ready colorizer (weights loaded, eval mode) from a file of one of two kinds.

    - a checkpoint written by `train.py`: rebuilt from the model config it carries;
    - an official Zhang et al. release (``colorization_release_v2-9b330a0b.pth`` for ECCV16,
      ``siggraph17-df00044c.pth``), recognised by its keys and run as the release runs it.

    Anything else raises `DataError`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises many types for foreign or truncated files
        raise DataError(f"{path}: not a readable PyTorch file ({type(error).__name__})") from None
    info = checkpoint.get("colorization") if isinstance(checkpoint, dict) else None
    if not info or not info.get("model"):
        kind = official_kind(checkpoint) if isinstance(checkpoint, dict) else None
        if kind is not None:
            return build_colorizer(release_config(kind, path), "lab").to(map_location).eval()
        raise DataError(
            f"{path}: neither a colorization checkpoint (no 'colorization' entry with the model config) "
            "nor an official ECCV16/SIGGRAPH17 state dict"
        )
    model_cfg = info["model"]
    if model_cfg.get("weights") and issubclass(get_class(model_cfg["_target_"]), ZhangColorizer):
        # the run started from another file, which need not exist any more: the checkpoint holds
        # the trained network in the same layout (a Zhang module reads its network from either)
        model_cfg = {**model_cfg, "weights": str(path)}
    model = build_colorizer(model_cfg, info["colorspace"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
