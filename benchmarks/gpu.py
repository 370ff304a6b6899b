"""Helpers of `benchmarks/gpu_check.sh` (they run on CPU too, for a dry run):

    python -m benchmarks.gpu arrays ROOT --images 25000 --size 256
        writes a Kaggle-layout array set of random uint8 Lab (l/gray_scale.npy, ab/ab/ab1..3.npy in
        files of 10k, 10k and the rest, as Kaggle's) in chunks at disk speed; prints the seconds taken;
    python -m benchmarks.gpu plain --name NAME --steps 100 OVERRIDES...
        images/s of the plain PyTorch loop (`benchmarks.loops.plain_step`) for the model that
        ``train.py OVERRIDES`` builds, on in-memory batches already on the device, in the
        precision the trainer config names (bf16-mixed -> bf16 autocast);
    python -m benchmarks.gpu infer --batch 16 OVERRIDES...
        images/s of `colorize_full` at data.crop_size for fp32, bf16, bf16 + channels_last and
        compile (fp32), interleaved.

Each prints one markdown table row to stdout.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from benchmarks.families import build_from, random_batch, train_config
from benchmarks.loops import plain_step
from benchmarks.timing import interleave, rate, seconds
from colorization.data.lab_arrays import AB_DIR, L_FILE
from colorization.inference.runtime import prepare_for_inference
from colorization.modules.base import ColorizerModule

KAGGLE_FILE_IMAGES = 10_000
CHUNK = 1_000


def write_arrays(root: Path, images: int, size: int, seed: int = 0) -> None:
    """Random uint8 L (N, s, s) and ab (n, s, s, 2) files in the Kaggle layout under `root`."""
    rng = np.random.default_rng(seed)
    block_l = rng.integers(0, 256, (CHUNK, size, size), dtype=np.uint8)
    block_ab = rng.integers(96, 160, (CHUNK, size, size, 2), dtype=np.uint8)  # a, b within +-32
    (root / L_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / AB_DIR).mkdir(parents=True, exist_ok=True)
    l_file = np.lib.format.open_memmap(root / L_FILE, mode="w+", dtype=np.uint8, shape=(images, size, size))
    for start in range(0, images, CHUNK):
        stop = min(images, start + CHUNK)
        l_file[start:stop] = block_l[: stop - start]
    l_file.flush()
    counts = [min(KAGGLE_FILE_IMAGES, images - s) for s in range(0, images, KAGGLE_FILE_IMAGES)]
    for number, count in enumerate(counts, start=1):
        path = root / AB_DIR / f"ab{number}.npy"
        ab_file = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size, 2))
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            ab_file[start:stop] = block_ab[: stop - start]
        ab_file.flush()


def _model(overrides: list[str]) -> tuple[DictConfig, ColorizerModule, torch.device, str]:
    """The config, the training module (on the GPU when there is one), the device and the trainer's precision."""
    cfg = train_config(overrides)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_from(overrides).to(device)
    precision = "bf16" if "bf16" in str(cfg.trainer.get("precision", "")) else "fp32"
    return cfg, model, device, precision


def plain(name: str, steps: int, overrides: list[str]) -> str:
    """A row of gpu_check.sh's run table: the plain loop's images/s for ``train.py OVERRIDES``'s model."""
    cfg, model, device, precision = _model(overrides)
    batch_size, size = int(cfg.data.batch_size), int(cfg.data.crop_size)
    batches = [random_batch(batch_size, size, device) for _ in range(4)]
    step = plain_step(model, precision)
    for batch in batches:  # warm-up: allocator, cuDNN autotuning
        step(batch)
    elapsed = seconds(lambda: [step(batches[k % len(batches)]) for k in range(steps)])
    # a row of gpu_check.sh's run table: name, command, rc, wall s, img/s, val/test (none here)
    speed = batch_size * steps / elapsed
    return f"| {name} (plain loop, {precision}) | `{' '.join(overrides)}` | 0 | {elapsed:.0f} | {speed:.2f} | - | - |"


def infer(batch: int, overrides: list[str]) -> str:
    """A row of gpu_check.sh's inference table: `colorize_full` images/s by precision, layout and compilation."""
    cfg, model, device, _ = _model(overrides)
    size = int(cfg.data.crop_size)
    l = torch.rand(batch, 1, size, size, device=device) * 100
    fp32 = prepare_for_inference(model.colorizer)
    channels_last = prepare_for_inference(copy.deepcopy(model.colorizer), channels_last=True)
    compiled = prepare_for_inference(copy.deepcopy(model.colorizer), compile=True)
    measured = interleave(
        {
            "fp32": rate(lambda: fp32.colorize_full(l), batch),
            "bf16": rate(lambda: fp32.colorize_full(l, precision="bf16"), batch),
            "bf16 + channels_last": rate(lambda: channels_last.colorize_full(l, precision="bf16"), batch),
            "compile (fp32)": rate(lambda: compiled.colorize_full(l), batch),
        },
        f"infer {' '.join(overrides)}",
        warmup=2,
        budget_s=10,
    )
    cells = [measured.rates[name].cell("{:.0f}") for name in measured.names]
    return f"| `{' '.join(overrides)}` | {size} | {batch} | " + " | ".join(cells) + " |"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu")
    commands = parser.add_subparsers(dest="command", required=True)
    arrays = commands.add_parser("arrays")
    arrays.add_argument("root", type=Path)
    arrays.add_argument("--images", type=int, default=25_000)
    arrays.add_argument("--size", type=int, default=224)
    for name in ("plain", "infer"):
        command = commands.add_parser(name)
        command.add_argument("--steps", type=int, default=50)
        command.add_argument("--batch", type=int, default=16)
        command.add_argument("--name", default="model")
        command.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    if args.command == "arrays":
        print(f"{seconds(lambda: write_arrays(args.root, args.images, args.size)):.0f}", flush=True)
    elif args.command == "plain":
        print(plain(args.name, args.steps, args.overrides), flush=True)
    else:
        print(infer(args.batch, args.overrides), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
