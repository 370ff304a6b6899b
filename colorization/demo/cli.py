"""The ``colorize-demo`` command line (also ``python -m colorization.demo``).

Imports nothing heavy at the top, so ``--help`` answers at once; the server (`colorization.demo.server`:
torch, Starlette, the models) is imported when it starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from colorization.demo import DEFAULT_MAX_FILM_SECONDS, DEFAULT_MAX_MEGAPIXELS
from colorization.errors import exit_on_user_error, require_extra

DEFAULT_PORT = 8765
DEMO_MODULES = ("starlette", "uvicorn", "skimage")
"""What the ``demo`` extra of pyproject.toml brings: the web framework, its server and the example photos."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="colorize-demo",
        description="Serve a local web page that colorizes photos and short films with the colorizers in a folder.",
    )
    parser.add_argument(
        "--models", required=True, help="folder of train.py checkpoints (.ckpt) and release weight files (.pth)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free port)")
    parser.add_argument(
        "--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS, help="largest photo accepted (default 50)"
    )
    parser.add_argument(
        "--max-film-seconds",
        type=float,
        default=DEFAULT_MAX_FILM_SECONDS,
        help="longest clip accepted (default 30)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code 0 after Ctrl+C, 2 for a usage error (nothing served)."""
    args = parse_args(argv)
    exit_on_user_error(lambda: require_extra("demo", DEMO_MODULES, "colorize-demo"))
    from colorization.demo import server  # torch, Starlette and the models: only to serve

    try:
        exit_on_user_error(lambda: server.serve(args))
    except KeyboardInterrupt:  # uvicorn shuts down on Ctrl+C, then raises it again for the caller
        print("stopped")
    return 0
