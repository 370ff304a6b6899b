"""`colorize` over a folder vs the bare network on the same photos: does decoding/encoding overlap compute?

Writes `PHOTOS` gray PNGs of 1024x768 cut from scikit-image's colour photos, then for ECCV16
(256x256 working size) and pix2pix (its U-Net at the full 1024x768) measures

- bare: `colorize_full` on the already-decoded L tensors, in batches, on the device (one untimed
  warm-up batch; CUDA synchronised), under the same precision the command uses;
- command: `colorize_paths` over the folder (decode in DataLoader workers, batching, the network,
  the writer thread's Lab -> sRGB and PNG encoding, atomic writes), after a warm-up run on two photos.

Random weights: speed does not depend on what the network learned. Environment: ``BENCH_PHOTOS``
(default 12; 64 on a GPU gives steadier rates), ``BENCH_WORKERS`` (default 4), ``BENCH_BATCH`` (default 8),
``BENCH_MODELS``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from benchmarks.timing import SMOKE
from colorization.colorize import colorize_paths
from colorization.colorize.model import Runner
from colorization.files.photos import read_photo
from colorization.inference.runtime import autocast, resolve_device, resolve_precision
from colorization.jobs.devices import synchronize
from colorization.modules.build import build_module

PHOTOS = int(os.environ.get("BENCH_PHOTOS", 2 if SMOKE else 12))
WORKERS = int(os.environ.get("BENCH_WORKERS", 4))
BATCH = int(os.environ.get("BENCH_BATCH", 8))
WIDTH, HEIGHT = 1024, 768
SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
MODELS = {
    "eccv16": {"_target_": "colorization.modules.ECCV16Module"},
    "pix2pix": {
        "_target_": "colorization.modules.GANColorizer",
        "generator": {"_target_": "colorization.networks.UNetGenerator", "_partial_": True},
        "discriminator": {"_target_": "colorization.networks.PatchDiscriminator", "_partial_": True},
    },
}


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


def bare_rate(model, ls: list[torch.Tensor], device: torch.device, precision: str) -> float:
    """Images/s of `colorize_full` alone on decoded L, batches of `BATCH`, after one warm-up batch."""
    runner = Runner(model, device, precision)  # the same device placement and autocast as the command
    batches = [torch.stack(ls[i : i + BATCH]).to(device) for i in range(0, len(ls), BATCH)]
    with torch.inference_mode(), autocast(device, runner.precision):
        model.colorize_full(batches[0])
        synchronize(device)
        start = time.perf_counter()
        for batch in batches:
            model.colorize_full(batch)
        synchronize(device)
    return len(ls) / (time.perf_counter() - start)


def run(precision: str = "auto") -> str:
    device = resolve_device("auto")
    names = os.environ.get("BENCH_MODELS", ",".join(MODELS)).split(",")
    used = resolve_precision(precision, device)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    lines = [
        f"colorize: {PHOTOS} gray PNGs of {WIDTH}x{HEIGHT}, batch {BATCH}, {WORKERS} decoding workers, "
        f"{device} ({hardware}), {used}",
        "",
        "| model | working size | bare colorize_full img/s | colorize command img/s | command / bare |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        paths = write_photos(folder, PHOTOS)
        ls = [read_photo(path).l for path in paths]
        for name in names:
            torch.manual_seed(0)
            model = build_module(MODELS[name], "lab").eval()
            work = model.working_size(HEIGHT, WIDTH)
            bare = bare_rate(model, ls, device, precision)
            kwargs = {"device": str(device), "batch_size": BATCH, "workers": WORKERS, "precision": precision}
            colorize_paths(paths[:2], model, Path(tmp) / f"warm-{name}", **kwargs)
            summary = colorize_paths([folder], model, Path(tmp) / f"out-{name}", **kwargs)
            assert summary.done == PHOTOS and not summary.failed, summary.line()
            command = summary.images_per_s
            lines.append(f"| {name} | {work[1]}x{work[0]} | {bare:.2f} | {command:.2f} | {command / bare:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
