"""The ``colorize`` command line: arguments in, `colorize_paths` run, one line of tally out.

Imports nothing heavy at the top, so ``colorize --help`` answers at once; the pipeline
(`colorization.colorize.photos`, torch and the models; `colorization.colorize.video` and PyAV for
films) is imported when a run starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from colorization.colorize import DEFAULT_MAX_MEGAPIXELS, DEFAULT_OUT, FORMATS
from colorization.errors import exit_on_user_error
from colorization.inference import AUTO, PRECISIONS
from colorization.video import CRF_RANGE, DEFAULT_CRF, FILTERS, VIDEO_SUFFIXES


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize",
        description="Colorize black-and-white photos and films: files, folders or globs in, full-resolution colour "
        "photos and films (OUT/NAME.mp4) out.",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help=f"photo or film files, folders or globs (films: {', '.join(s[1:] for s in VIDEO_SUFFIXES)})",
    )
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
    parser.add_argument("--format", default="png", choices=FORMATS, help="of colorized photos (same: as read)")
    parser.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality of photos, 1-100")
    parser.add_argument(
        "--side-by-side", action="store_true", help="photos: also write NAME.compare.png: input | colorized"
    )
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
        help="photo decoding processes (0: decode in the main process); outputs are encoded by a thread per core",
    )
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULT_MAX_MEGAPIXELS,
        help=f"larger photos fail alone, unread (default {DEFAULT_MAX_MEGAPIXELS:g}; memory: about 25 bytes a pixel)",
    )
    parser.add_argument(
        "--precision", default=AUTO, choices=[AUTO, *PRECISIONS], help="auto: bf16 on CUDA, fp32 on CPU"
    )
    films = parser.add_argument_group("films")
    films.add_argument(
        "--deflicker",
        default=FILTERS[0],
        choices=FILTERS,
        help="flow: steady colours along the motion (default); none: every frame as the model colours it",
    )
    films.add_argument(
        "--crf",
        type=int,
        default=DEFAULT_CRF,
        help=f"H.264 quality on x264's scale, {CRF_RANGE[0]} lossless .. {CRF_RANGE[1]} worst (default {DEFAULT_CRF})",
    )
    films.add_argument("--start", type=float, metavar="SECONDS", help="colorize from this time on")
    films.add_argument("--end", type=float, metavar="SECONDS", help="colorize up to this time")
    parser.add_argument("--offline", action="store_true", help="never download weights")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code: 0 all done, 1 some photo failed, 2 a usage error (nothing was colorized)."""
    args = parse_args(argv)
    args.workers = capped_workers(args.workers)
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
            deflicker=args.deflicker,
            crf=args.crf,
            start_s=args.start,
            end_s=args.end,
            max_megapixels=args.max_megapixels,
        )
    )
    print(tally.line())
    return tally.exit_code


def capped_workers(workers: int) -> int:
    """`workers` (``--workers``), at most the CPU cores this process may run on: each is a decoding process,
    and more than the cores only compete for them. A capped value is said in one line on stderr."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if workers > cores:
        print(f"--workers {workers}: using {cores}, the CPU cores this process may run on", file=sys.stderr)
        return cores
    return workers
