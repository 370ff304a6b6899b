"""Build a colorizer from its Hydra config, and rebuild one from a checkpoint or a release weight file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

import colorization.modules  # noqa: F401  (importing the families registers their release formats)
from colorization.errors import ConfigError, DataError
from colorization.files.downloads import weights_path
from colorization.files.weights import safe_load
from colorization.inference.releases import identify_release, release_names
from colorization.inference.runtime import compile_networks
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule

STORED_TARGETS: dict[str, tuple[type, ...]] = {
    "colorization.": (nn.Module,),
    "torch.optim.": (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler),
}
"""Module prefixes a checkpoint's stored model config may import from -> the classes allowed there
(this package's modules, networks and losses; PyTorch's optimizers and schedulers)."""
RUN_OPTIONS = ("compile",)
"""Model config keys that say how to run the model, not what it is: not stored, not compared."""


def build_colorizer(model_cfg: DictConfig | dict, colorspace: str, name: str | None = None) -> ColorizerModule:
    """Instantiate `model_cfg` (a ``conf/model/*.yaml``) for `colorspace`, remembering the config
    and its `name` (the chosen option, ``pix2pix``; checkpoints keep both).

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


def load_colorizer(path: str | Path, map_location: str | torch.device = "cpu") -> ColorizerModule:
    """A ready colorizer (weights loaded, eval mode) from a file of one of two kinds.

    - a checkpoint written by `train.py`: rebuilt from the model config it carries;
    - a release file of a registered format (`colorization.inference.releases`, e.g. Zhang et al.'s
      ``colorization_release_v2-9b330a0b.pth``), recognised by its keys and built as the family says;
      a registered release name (``eccv16``, `colorization.files.downloads`) means its cached file.

    The file is read with ``weights_only=True`` (never unpickled). Anything else raises `DataError`.
    """
    path = weights_path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    checkpoint = safe_load(path, map_location=map_location)
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
    check_stored_targets(model_cfg, path)
    try:
        module = get_class(model_cfg["_target_"])
    except Exception as error:  # hydra raises ImportError and others for a target that is gone
        raise DataError(f"{path}: its model._target_={model_cfg['_target_']!r} cannot be imported ({error})") from None
    if issubclass(module, ColorizerModule):
        model_cfg = module.checkpoint_config(model_cfg, path)
    # the strict load below overwrites every parameter: drawing random ones first would be wasted
    with random_init_skipped():
        model = build_colorizer(model_cfg, info["colorspace"], info.get("name"))
    model.load_state_dict(checkpoint["state_dict"])
    model.trained_size = info.get("trained_size")
    return model.eval()


@contextmanager
def random_init_skipped() -> Iterator[None]:
    """Inside, `torch.nn.init`'s in-place initialisers (``normal_``, ``kaiming_uniform_``...) leave their
    tensor as it is, so layers keep the uninitialised memory `torch.empty` gave them.

    Only for a model whose every parameter a strict `load_state_dict` overwrites right after (a strict
    load refuses a state dict that misses one). Random initialisation was 0.22 s of the 0.23 s it took
    to build pix2pix (19 M parameters) on the development CPU: evaluation, `colorize` and the demo start
    that much sooner. Buffers do not come from these functions and are built as usual.
    """
    initialisers = {
        name: function
        for name, function in vars(nn.init).items()
        if name.endswith("_") and not name.startswith("_") and callable(function)
    }
    try:
        for name in initialisers:
            setattr(nn.init, name, _unchanged)
        yield
    finally:
        for name, function in initialisers.items():
            setattr(nn.init, name, function)


def _unchanged(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


def check_stored_targets(model_cfg: Any, source: str | Path) -> None:
    """Refuse a stored model config whose ``_target_``s name anything but PyTorch modules
    (networks, losses, colorizer modules) and PyTorch's optimizers and schedulers.

    A checkpoint's config is instantiated when the checkpoint is loaded, so without this check a
    file could call any function (``builtins.open``, ``os.system``) with arguments of its choice.
    Names under `STORED_TARGETS`' prefixes (this package, ``torch.optim``) are imported; any other
    name must be a class already loaded in this process (a network defined outside the package,
    whose module the caller imported), so reading a checkpoint never imports a module it names.
    Raises `DataError`.
    """
    for key, target in _targets(model_cfg, "model"):
        name = str(target)
        allowed = next((bases for prefix, bases in STORED_TARGETS.items() if name.startswith(prefix)), (nn.Module,))
        if any(name.startswith(prefix) for prefix in STORED_TARGETS):
            try:
                resolved = get_class(name)
            except Exception:  # not importable or not a class: refused below
                resolved = None
        else:
            module, _, attribute = name.rpartition(".")
            resolved = getattr(sys.modules.get(module), attribute, None) if module else None
        if not (isinstance(resolved, type) and issubclass(resolved, allowed)):
            raise DataError(
                f"{source}: refused: its stored config sets {key}._target_={target!r}, which is not a loaded "
                "network, loss or optimizer class; a checkpoint may only name those (import the module that "
                "defines a network of your own before loading its checkpoint)"
            )


def _targets(node: Any, key: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, target) for every ``_target_`` in a nested config of dicts and lists."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield key, node["_target_"]
        for name, value in node.items():
            yield from _targets(value, f"{key}.{name}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _targets(value, f"{key}[{index}]")
