"""Weight files as users have them, holding random weights: Zhang et al.'s release files, torchvision's
VGG16-BN file, train.py's checkpoints (without training)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor

from colorization.color.ab_bins import grid_centres
from colorization.networks import ECCV16Net, SIGGRAPH17Net

ZHANG_NETWORKS = {"eccv16": ECCV16Net, "siggraph17": SIGGRAPH17Net}
RELEASE_NAMES = {"eccv16": "colorization_release_v2", "siggraph17": "siggraph17"}
"""The stems of Zhang et al.'s release files (before the sha256 prefix)."""

CNN_CONFIG = {
    "_target_": "colorization.modules.RegressionColorizer",
    "net": {"_target_": "colorization.networks.StudyCNN", "_partial_": True, "filters": 4, "padding": "same"},
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
}
"""A small study CNN (4 filters, same padding): fast to build, run and save."""

VGG_CONVS = (0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40)
"""Conv indices in torchvision's vgg16_bn.features (BatchNorm at +1, ReLU at +2, pools between blocks)."""


def random_release_state(name: str, seed: int = 0) -> dict[str, Tensor]:
    """A randomly initialised network's state dict, ECCV16 with 313 centres in model_out like the release."""
    torch.manual_seed(seed)
    state = ZHANG_NETWORKS[name]().state_dict()
    if name == "eccv16":
        state["model_out.weight"] = grid_centres()[:313].T[:, :, None, None] / 110
    # the release's files come from an older PyTorch without the BatchNorm counters
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def save_release_style(state_dict: dict, directory: Path, stem: str) -> Path:
    """Save like the release: ``<stem>-<first 8 hex digits of the file's sha256>.pth``."""
    tmp = directory / f"{stem}.tmp"
    torch.save(state_dict, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    return tmp.rename(directory / f"{stem}-{digest}.pth")


def save_checkpoint(model, path: Path) -> Path:
    """A file shaped like train.py's checkpoints (model config + state dict), without training."""
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def torchvision_vgg16_bn_layout() -> dict[str, Tensor]:
    """A state dict in the layout of torchvision's ``vgg16_bn`` file (random values, small classifier)."""
    state, in_ch = {}, 3
    widths = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
    for index, out_ch in zip(VGG_CONVS, widths, strict=True):
        state[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3) * 0.05
        state[f"features.{index}.bias"] = torch.randn(out_ch) * 0.05
        bn = index + 1
        state[f"features.{bn}.weight"] = 1 + 0.1 * torch.randn(out_ch)
        state[f"features.{bn}.bias"] = 0.1 * torch.randn(out_ch)
        state[f"features.{bn}.running_mean"] = 0.1 * torch.randn(out_ch)
        state[f"features.{bn}.running_var"] = 1 + 0.1 * torch.rand(out_ch)
        state[f"features.{bn}.num_batches_tracked"] = torch.tensor(0)
        in_ch = out_ch
    state["classifier.0.weight"], state["classifier.0.bias"] = torch.zeros(4, 8), torch.zeros(4)
    return state
