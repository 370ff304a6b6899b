"""`colorize` end to end vs the bare network on the same photos: how much of the command's time is the model's?

Writes `PHOTOS` gray PNGs of 1024x768 cut from scikit-image's colour photos, then for two
colorizers interleaves

- ``bare``: `colorize_full` on the already-decoded full-resolution L, in batches of `BATCH`, on
  the device the command picks, in its precision (shrink to the working size, network, ab
  upsampled onto the full L);
- ``command``: `colorize_paths` over the folder as ``colorize`` runs it (decoding in `WORKERS`
  DataLoader workers, batching, the network, the writer pool's full-resolution Lab -> sRGB and PNG
  encoding, a thread per core, atomic writes), every output rewritten each round.

The colorizers: ECCV16 (its fixed 256x256 working size, a slow network) and the study's CNN as a
checkpoint trained on 256-px crops would run it (working size 256x192 here: the photo's longer side
at the trained size; a fast network, so the command's own work shows). Random weights: speed does not
depend on what a network learned. Environment: ``BENCH_PHOTOS``, ``BENCH_WORKERS`` (the command's
default, 2), ``BENCH_BATCH`` (its default, 8).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from benchmarks.families import build_colorizer
from benchmarks.sections import Section, Summary
from benchmarks.timing import SMOKE, interleave, rate, table
from colorization.colorize.model import Runner
from colorization.colorize.photos import colorize_paths
from colorization.files.photos import read_photo
from colorization.inference.base import Colorizer
from colorization.inference.runtime import resolve_device

PHOTOS = int(os.environ.get("BENCH_PHOTOS", 2 if SMOKE else 8))
WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
BATCH = int(os.environ.get("BENCH_BATCH", 8))
WIDTH, HEIGHT = 1024, 768
TRAINED_SIZE = 256
"""The crop size the CNN is taken to be trained at: `colorize` runs a model without a fixed working
size with the photo's longer side at its trained size (`colorization.colorize.model.Plan`)."""
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def write_photos(folder: Path, count: int) -> list[Path]:
    """`count` gray 1024x768 PNGs: the built-in photos resized and shifted so that no two are the same."""
    paths = []
    for i in range(count):
        rgb = getattr(skdata, SOURCES[i % len(SOURCES)])()
        image = Image.fromarray(rgb).convert("L").resize((WIDTH + 8 * i, HEIGHT + 6 * i), Image.BICUBIC)
        path = folder / f"photo{i:03d}.png"
        image.crop((4 * i, 3 * i, 4 * i + WIDTH, 3 * i + HEIGHT)).save(path)
        paths.append(path)
    return paths


def colorizers() -> dict[str, Colorizer]:
    cnn = build_colorizer("cnn")
    cnn.trained_size = TRAINED_SIZE
    return {"eccv16": build_colorizer("eccv16"), f"cnn (trained at {TRAINED_SIZE} px)": cnn}


def bare(colorizer: Colorizer, ls: list[torch.Tensor], device: torch.device, precision: str) -> None:
    """`colorize_full` on decoded L, batches of `BATCH`, at the working size the command uses."""
    size = None if colorizer.native_size else colorizer.trained_size
    for start in range(0, len(ls), BATCH):
        colorizer.colorize_full(torch.stack(ls[start : start + BATCH]).to(device), size=size, precision=precision)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cost(ratio: float) -> str:
    """What a command-vs-bare ratio says the command's own work costs, in words."""
    return "no measurable share of the rate" if ratio >= 0.97 else f"{1 - ratio:.0%} of the rate"


def run() -> Section:
    device = resolve_device("auto")
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} thread(s)"
    rows, ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = write_photos(folder, PHOTOS)
        ls = [read_photo(path).l for path in paths]
        for name, colorizer in colorizers().items():
            runner = Runner(colorizer, device)  # the command's device placement and precision ("auto")
            work = colorizer.working_size(HEIGHT, WIDTH, None if colorizer.native_size else colorizer.trained_size)
            settings = {"device": str(device), "batch_size": BATCH, "workers": WORKERS, "overwrite": True}
            out = Path(tmp) / f"out-{len(rows)}"
            measured = interleave(
                {
                    "bare": rate(lambda c=colorizer, r=runner: bare(c, ls, device, r.precision), PHOTOS),
                    "command": rate(lambda c=colorizer, o=out, s=settings: colorize_paths([folder], c, o, **s), PHOTOS),
                },
                f"colorize {name}",
                budget_s=25,
                max_rounds=6,
            )
            ratios[name] = measured.ratios["command"].median
            rows.append(
                [
                    name,
                    f"{work[1]}x{work[0]}",
                    measured.rates["bare"].cell("{:.2f}"),
                    measured.rates["command"].cell("{:.2f}"),
                    measured.ratios["command"].cell(suffix="x"),
                    str(len(measured.ratios["command"].values)),
                ]
            )
    figure = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
    slow, fast = ratios.values()
    return Section(
        title="Colorize: the `colorize` command end to end vs the bare `colorize_full`",
        body=(
            f"{PHOTOS} gray PNGs of {WIDTH}x{HEIGHT}, batch {BATCH}, {WORKERS} decoding workers, a writer thread "
            f"per core, {device} ({hardware}), {runner.precision}. Median (min-max) over interleaved rounds, "
            "ratios paired per round.\n\n"
            + table(["model", "working size", "bare img/s", "command img/s", "command vs bare", "rounds"], rows)
        ),
        conclusion=(
            f"What the command adds to the network (decoding, Lab -> sRGB and encoding of {WIDTH}x{HEIGHT} photos, "
            f"in workers and threads beside it) costs {cost(slow)} with the slow ECCV16 and {cost(fast)} with the "
            "fast CNN."
        ),
        summary=Summary("`colorize` end to end vs the bare `colorize_full` rate", f"{figure} the bare rate"),
    )
