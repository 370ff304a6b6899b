"""A models folder for the demo's tests: real files of each kind `colorize-demo --models` lists, no training.

- a SIGGRAPH17 release-layout file whose random first convolution reads the hint planes
  `HINT_GAIN` times more strongly (random weights barely react to hints; trained ones do);
- an ECCV16 release-layout file with sharpened logits (so the temperature has a distribution to anneal);
- a train.py-style checkpoint of a small study CNN (config + state dict), fast for page tests;
- a file with a model suffix that is no model (the page must skip it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from colorization.color.spaces import rgb_to_lab
from colorization.modules.build import build_module
from tests.helpers.weights import CNN_CONFIG, RELEASE_NAMES, random_release_state, save_release_style

HINT_GAIN = 50.0
LOGIT_GAIN = 100.0
NOT_A_MODEL = "notes.pt"


def make_models_dir(root: Path) -> dict[str, str]:
    """Fill `root` with the four files; returns the model kind -> its key in the catalog (path under root)."""
    root.mkdir(parents=True, exist_ok=True)
    siggraph = random_release_state("siggraph17")
    siggraph["model1.0.weight"][:, 1:] *= HINT_GAIN
    siggraph_path = save_release_style(siggraph, root, RELEASE_NAMES["siggraph17"])
    eccv = random_release_state("eccv16")
    eccv["model8.6.weight"] *= LOGIT_GAIN
    eccv["model8.6.bias"] *= LOGIT_GAIN
    eccv_path = save_release_style(eccv, root, RELEASE_NAMES["eccv16"])
    torch.manual_seed(0)
    cnn = build_module(CNN_CONFIG, "lab")
    checkpoint = {"state_dict": cnn.state_dict()}
    cnn.on_save_checkpoint(checkpoint)
    (root / "runs").mkdir(exist_ok=True)
    torch.save(checkpoint, root / "runs" / "last.ckpt")
    (root / NOT_A_MODEL).write_text("not a model\n")
    return {"siggraph17": siggraph_path.name, "eccv16": eccv_path.name, "cnn": "runs/last.ckpt"}


def ab_of(image: Image.Image) -> np.ndarray:
    """(H, W, 2) CIE a*, b* of an RGB image, float64."""
    values = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return rgb_to_lab(torch.from_numpy(values).permute(2, 0, 1)[None])[0, 1:].permute(1, 2, 0).double().numpy()
