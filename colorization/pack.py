"""Pack a folder of photos into the memory-mapped Kaggle Lab-array layout: ``python -m colorization.pack SRC DST``.

The command line only; the work (and what it writes, resumably) is `colorization.data.packing`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from colorization.errors import exit_on_user_error


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m colorization.pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="folder of photos (searched recursively)")
    parser.add_argument("dst", type=Path, help="new directory for the Kaggle layout (must not exist)")
    parser.add_argument("--size", type=int, default=224, help="side of the stored square images (default 224)")
    parser.add_argument("--chunk", type=int, help="images per ab file (default: 10000, as in the Kaggle release)")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (default 2)")
    parser.add_argument("--min-chroma", type=float, default=0.0, help="leave out gray-looking images (default 0: none)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    from colorization.data.packing import pack  # torch and the data pipeline: only for a run

    settings = {"chunk": args.chunk} if args.chunk is not None else {}
    dst = exit_on_user_error(
        lambda: pack(args.src, args.dst, args.size, workers=args.workers, min_chroma=args.min_chroma, **settings)
    )
    print(f"packed into {dst}; train on it with: python train.py data=kaggle data.root={dst}", file=sys.stderr)


if __name__ == "__main__":
    main()
