"""Checkpoints written before checkpoints described their colorizer: their training config -> the colorizer's.

Such a checkpoint stores only its training module's config (``colorization.model``), whose
``_target_`` names the family. For the five families that existed then, `colorizer_entry` gives
what a checkpoint of today stores (``colorization.colorizer``): the inference config and which of
the module's networks hold the colorizer's weights. Settings the stored config left out take the
colorizer's defaults, which are the defaults those modules had. Families added since store their
own entry, so this table never grows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from colorization.inference.ddcolor import DDColorColorizer
from colorization.inference.direct import direct_config
from colorization.inference.zhang import ECCV16_SIGNATURE, ECCV16Colorizer, SIGGRAPH17Colorizer
from colorization.instantiate import target_of

Entry = dict[str, Any]
"""``{"config": colorizer config, "networks": {colorizer's network: module's network}}``."""


def _settings(model_cfg: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: model_cfg[key] for key in keys if key in model_cfg}


def _direct(network: str) -> Callable[[Mapping[str, Any], str, Mapping[str, Tensor]], Entry]:
    """A regression or GAN module: its `network` (``net``, ``generator``) predicts the colour space's target."""

    def entry(model_cfg: Mapping[str, Any], colorspace: str, state_dict: Mapping[str, Tensor]) -> Entry:
        return {"config": direct_config(model_cfg[network], colorspace), "networks": {"net": network}}

    return entry


def _eccv16(model_cfg: Mapping[str, Any], colorspace: str, state_dict: Mapping[str, Tensor]) -> Entry:
    settings = _settings(model_cfg, ("native_size", "temperature"))
    num_bins = state_dict[f"net.{ECCV16_SIGNATURE}"].shape[0]  # 313 from the release, the gamut's from scratch
    config = {"_target_": target_of(ECCV16Colorizer), "colorspace": colorspace, "num_bins": num_bins, **settings}
    return {"config": config, "networks": {"net": "net"}}


def _siggraph17(model_cfg: Mapping[str, Any], colorspace: str, state_dict: Mapping[str, Tensor]) -> Entry:
    settings = _settings(model_cfg, ("native_size", "temperature", "decode"))
    config = {"_target_": target_of(SIGGRAPH17Colorizer), "colorspace": colorspace, **settings}
    return {"config": config, "networks": {"net": "net"}}


def _ddcolor(model_cfg: Mapping[str, Any], colorspace: str, state_dict: Mapping[str, Tensor]) -> Entry:
    settings = _settings(model_cfg, ("size", "input_size", "num_queries", "num_layers"))
    config = {"_target_": target_of(DDColorColorizer), "colorspace": colorspace, **settings}
    return {"config": config, "networks": {"net": "net"}}


FAMILIES: dict[str, Callable[[Mapping[str, Any], str, Mapping[str, Tensor]], Entry]] = {
    "colorization.modules.RegressionColorizer": _direct("net"),
    "colorization.modules.GANColorizer": _direct("generator"),
    "colorization.modules.ECCV16Module": _eccv16,
    "colorization.modules.SIGGRAPH17Module": _siggraph17,
    "colorization.modules.DDColorModule": _ddcolor,
}
"""A family's module (as configs named it, ``colorization.modules.<class>``) -> its colorizer entry."""


def colorizer_entry(info: Mapping[str, Any], state_dict: Mapping[str, Tensor]) -> Entry | None:
    """The ``colorizer`` entry of an old checkpoint's ``colorization`` `info`; None for an unknown family."""
    model_cfg = info["model"]
    family = str(model_cfg.get("_target_", ""))
    # the release builders stored the defining module's path (colorization.modules.zhang.ECCV16Module)
    short = f"colorization.modules.{family.rpartition('.')[2]}"
    make = FAMILIES.get(family) or (FAMILIES.get(short) if family.startswith("colorization.modules.") else None)
    return None if make is None else make(model_cfg, info["colorspace"], state_dict)
