"""An ONNX export (`colorization.export`) run by onnxruntime, usable wherever a colorizer is.

The graph has `Colorizer.colorize_full`'s contract (any-size L in, Lab with that L out) and records
the working size it was exported with (metadata ``native_size``, ``size_multiple``, ``resize_mode``),
so `colorize` can batch photos the way it does for PyTorch colorizers. onnxruntime comes with the
optional extra ``[onnx]``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from colorization.errors import DataError, require_extra
from colorization.files.weights import require_file
from colorization.inference.base import Colorizer

METADATA_KEYS = ("native_size", "size_multiple", "resize_mode")
"""What an export records about its working size (`colorization.export` writes them)."""


class OnnxColorizer(Colorizer):
    """An ONNX export run by onnxruntime on the CPU, usable wherever a colorizer is (it holds no networks).

    `colorize` gets L already at the working size (the graph's own resize is then the identity).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__("lab")
        path = Path(path)
        require_file(path, "an .onnx file (python -m colorization.export writes one)")
        require_extra("onnx", ["onnxruntime"], f"{path}: running an ONNX file")
        import onnxruntime

        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own types for files it cannot read
            raise DataError(f"{path}: not a readable ONNX model ({type(error).__name__})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if not set(METADATA_KEYS) <= set(metadata):
            raise DataError(f"{path}: not an export of this project (no {', '.join(METADATA_KEYS)} metadata)")
        self.native_size = json.loads(metadata["native_size"])
        self.size_multiple = json.loads(metadata["size_multiple"])
        self.resize_mode = json.loads(metadata["resize_mode"])
        self.path = path

    def colorize(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L -> (B, 3, H, W) Lab, computed by onnxruntime on the CPU."""
        (lab,) = self.session.run(["lab"], {"l": l.detach().float().cpu().numpy()})
        return torch.from_numpy(np.asarray(lab)).to(l.device)

    def colorize_full(self, l: Tensor) -> Tensor:
        """Any-size L -> Lab, all inside the graph (the same contract as `Colorizer.colorize_full`)."""
        return self.colorize(l)
