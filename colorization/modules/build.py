"""Build a family's LightningModule from its Hydra config (``conf/model/*.yaml``)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from colorization.errors import ConfigError
from colorization.inference.runtime import compile_networks
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule


def build_module(model_cfg: DictConfig | dict, colorspace: str, name: str | None = None) -> ColorizerModule:
    """Instantiate `model_cfg` for `colorspace`, remembering the config and its `name` (the chosen
    option, ``pix2pix``; checkpoints keep both).

    ``compile: true`` compiles the model's networks (`torch.compile`); it says how to run the
    model, not what the model is, so it is not part of the remembered config.
    """
    config = OmegaConf.to_container(OmegaConf.create(model_cfg), resolve=True)
    compile_ = config.pop("compile", False)
    if not isinstance(compile_, bool):
        raise ConfigError(f"model.compile={compile_!r}: expected true or false")
    model = instantiate(config, key="model", colorspace=colorspace)
    if not isinstance(model, ColorizerModule):
        raise ConfigError(f"model._target_={model_cfg['_target_']!r} is not a ColorizerModule")
    model.model_config = config
    model.config_name = name
    if compile_:
        compile_networks(model)
    return model
