"""Export a colorizer to ONNX or TorchScript (`colorization.inference.onnx` runs an ONNX export).

``python -m colorization.export --model SOURCE --format onnx|torchscript --out FILE``

The exported graph has `colorize_full`'s contract: (B, 1, H, W) L in [0, 100] for any B, H, W in,
(B, 3, H, W) Lab carrying that L out; L is resized to the model's working size inside the graph.
An ONNX file also records that working size (metadata ``native_size``, ``size_multiple``,
``resize_mode``), so ``colorize --model FILE.onnx`` (`colorization.inference.onnx.OnnxColorizer`) can
batch photos the way it does for PyTorch models. onnxruntime comes with the optional extra ``[onnx]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from colorization.errors import ConfigError, check_choice, exit_on_user_error, require_extra
from colorization.files.atomic import atomic_write, check_writable, remove_partial_files
from colorization.inference.base import Colorizer, attach_ab, shrink_l, working_size
from colorization.inference.onnx import METADATA_KEYS

FORMATS = ("onnx", "torchscript")
OPSET = 18
"""ONNX opset: 18 is the first whose Resize has the antialiasing the working-size shrink uses."""
EXAMPLE_SIZE = (2, 1, 96, 128)
"""(B, 1, H, W) of the example input the graph is traced with; B, H and W stay dynamic."""


class FullResolution(nn.Module):
    """`model.colorize_full` as a module to export: L (B, 1, H, W) -> Lab (B, 3, H, W), any size."""

    def __init__(self, model: Colorizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, l: Tensor) -> Tensor:
        work = working_size(l.shape[-2], l.shape[-1], self.model.native_size, self.model.size_multiple)
        small = shrink_l(l, work, self.model.resize_mode, always=True)
        return attach_ab(l, self.model.colorize(small)[:, 1:], always=True)


def export(model: Colorizer, out: Path, format: str = "onnx") -> Path:
    """Write `model`'s full-resolution graph to `out` atomically (`colorization.files.atomic`)."""
    check_choice("--format", format, FORMATS)
    wrapper = FullResolution(model.cpu().eval()).eval()
    example = torch.rand(*EXAMPLE_SIZE) * 100
    remove_partial_files(out.parent)  # what a killed export left

    def write(temporary: Path) -> None:
        if format == "onnx":
            _export_onnx(wrapper, example, temporary)
        else:
            with torch.no_grad(), warnings.catch_warnings():
                # size checks (`H % multiple`) are traced as constants: the trace holds for sizes
                # that are multiples of the model's `size_multiple`, which `colorize` always uses
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.trace(wrapper, example, check_trace=False)
            traced.save(str(temporary))

    return atomic_write(out, write)


def _export_onnx(wrapper: FullResolution, example: Tensor, path: Path) -> None:
    import onnx

    dims = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    with torch.no_grad():
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamic_shapes=({**dims},),
            input_names=["l"],
            output_names=["lab"],
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))
    graph = onnx.load(str(path))
    model = wrapper.model
    for key in METADATA_KEYS:
        graph.metadata_props.add(key=key, value=json.dumps(getattr(model, key)))
    onnx.save(graph, str(path))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m colorization.export",
        description="Export a colorizer: L in [0, 100] (any size) in, Lab out, as ONNX or TorchScript.",
    )
    parser.add_argument("--model", required=True, help="a release name, a train.py checkpoint or a weight file")
    parser.add_argument("--format", default="onnx", choices=FORMATS)
    parser.add_argument("--out", required=True, type=Path, help="the file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--offline", action="store_true", help="never download weights")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from colorization.inference.loading import load_colorizer

    args = parse_args(argv)

    def job() -> None:
        # checked before the model is loaded: export is the last step, and a model can take a while
        if args.out.is_dir():
            example = args.out / f"model.{'onnx' if args.format == 'onnx' else 'pt'}"
            raise ConfigError(f"--out {args.out} is a folder; expected the file to write, e.g. {example}")
        if args.out.exists() and not args.overwrite:
            raise ConfigError(f"--out {args.out} already exists; pass --overwrite to replace it")
        check_writable(args.out.parent, f"--out {args.out}: folder")
        if args.format == "onnx":
            require_extra("onnx", ["onnx", "onnxscript"], "--format onnx")
        export(load_colorizer(args.model, offline=args.offline), args.out, args.format)

    exit_on_user_error(job)
    print(f"wrote {args.out} ({args.format}, {args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
