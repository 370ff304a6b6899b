"""The ``colorize`` command line: arguments in, `colorize_paths` run, one line of tally out.

Imports nothing heavy at the top, so ``colorize --help`` answers at once; the pipeline
(`colorization.colorize.photos`, torch and the models) is imported when a run starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from colorization.colorize import DEFAULT_OUT, FORMATS
from colorization.errors import exit_on_user_error
from colorization.inference import AUTO, PRECISIONS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize",
        description="Colorize black-and-white photos: files, folders or globs in, full-resolution colour photos out.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    parser.add_argument(
        "--model",
        required=True,
        help="a release name (eccv16, siggraph17), a train.py checkpoint, a weight file or an .onnx export",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: ./colorized)")
    parser.add_argument(
        "--size", type=int, help="working size: the square side of fixed-size models, else the longer side"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--format", default="png", choices=FORMATS)
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality, 1-100")
    parser.add_argument("--side-by-side", action="store_true", help="also write NAME.compare.png: input | colorized")
    parser.add_argument("--overwrite", action="store_true", help="rewrite outputs that already exist")
    parser.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    parser.add_argument(
        "--temperature", type=float, help="annealed-mean temperature (ECCV16, SIGGRAPH17): lower = more saturated"
    )
    parser.add_argument("--hints", help="JSON or CSV of colour points (x, y, colour) for one photo (SIGGRAPH17)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="decoding processes and writer threads (0: decode in the main process, one writer)",
    )
    parser.add_argument(
        "--precision", default=AUTO, choices=[AUTO, *PRECISIONS], help="auto: bf16 on CUDA, fp32 on CPU"
    )
    parser.add_argument("--offline", action="store_true", help="never download weights")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code: 0 all done, 1 some photo failed, 2 a usage error (nothing was colorized)."""
    args = parse_args(argv)
    from colorization.colorize.photos import colorize_paths  # torch and the models: only for a run

    tally = exit_on_user_error(
        lambda: colorize_paths(
            args.inputs,
            args.model,
            args.out,
            size=args.size,
            device=args.device,
            batch_size=args.batch_size,
            format=args.format,
            quality=args.quality,
            side_by_side=args.side_by_side,
            overwrite=args.overwrite,
            recursive=args.recursive,
            temperature=args.temperature,
            hints=args.hints,
            workers=args.workers,
            precision=args.precision,
            offline=args.offline,
            progress=not args.quiet,
        )
    )
    print(tally.line())
    return tally.exit_code
