"""DDColor's speed: inference of DDColor-T and -L beside ECCV16 in fp32 and bf16, and DDColor-T's training step.

Inference: each inference colorizer (random weights) colorizes one random L image at `SIDE` px
(the network alone: its working size is the image's; ``BENCH_DDCOLOR_FULL=1`` adds 512, the authors'
inference size), under ``torch.inference_mode``, fp32 and bf16 autocast, all interleaved against
ECCV16 in fp32. Training: the real `DDColorModule.training_step` (manual optimization: generator then
discriminator, AdamW/Adam, the authors' losses without the perceptual term, which needs the VGG
weights file) through Lightning's own loop on batches in memory, batch 4 (the authors' batch per
GPU) at 128 px; on a GPU in bf16-mixed.
"""

from __future__ import annotations

import os

import torch

from benchmarks.families import build_colorizer, build_from, random_batch
from benchmarks.loops import lightning_rate
from benchmarks.sections import Section, Summary
from benchmarks.timing import SMOKE, interleave, rate, table
from colorization.inference.base import Colorizer
from colorization.inference.ddcolor import DDColorColorizer
from colorization.inference.runtime import has_fast_bf16, resolve_device

SIDES = (256, 512) if os.environ.get("BENCH_DDCOLOR_FULL") == "1" and not SMOKE else (256,)
"""DDColor's sides: its native 512 only with ``BENCH_DDCOLOR_FULL=1`` (on a CPU a 512-px DDColor-L image takes
seconds, most of `make bench`'s time)."""
BASELINE = "ECCV16 256 px fp32"
TRAIN_BATCH, TRAIN_SIZE = 4, 128
TRAIN_BATCHES = 2 if SMOKE else 4
"""Batches per training fit: the first is a warm-up the `Throughput` callback leaves out."""


def colorizers() -> dict[str, tuple[Colorizer, tuple[int, ...]]]:
    """Name -> (colorizer, sides it is timed at). ECCV16 runs at its native 256 px."""
    return {
        "ECCV16": (build_colorizer("eccv16"), (256,)),
        "DDColor-T": (DDColorColorizer(size="tiny").eval(), SIDES),
        "DDColor-L": (DDColorColorizer(size="large").eval(), SIDES),
    }


def precisions(device: torch.device) -> tuple[str, ...]:
    """fp32, and bf16 where the device has bf16 units (elsewhere one bf16 ECCV16 call takes minutes)."""
    return ("fp32", "bf16") if has_fast_bf16(device) else ("fp32",)


def inference(device: torch.device) -> dict:
    """One `colorize_full` call per variant (``NAME SIDE px PRECISION``) at the image's side, images/s, the
    baseline first."""
    calls = {}
    for name, (colorizer, sides) in colorizers().items():
        colorizer.to(device)
        for side in sides:
            l = torch.rand(1, 1, side, side, device=device) * 100
            for precision in precisions(device):
                calls[f"{name} {side} px {precision}"] = rate(
                    lambda c=colorizer, l=l, p=precision: c.colorize_full(l, size=l.shape[-1], precision=p), 1
                )
    return calls


def run() -> Section:
    device = resolve_device("auto")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    measured = interleave(inference(device), "ddcolor inference", budget_s=25, max_rounds=8)
    rows = [[n, measured.rates[n].cell("{:.2f}"), measured.ratios[n].cell(suffix="x")] for n in measured.names]
    module = build_from(["model=ddcolor"])
    batches = [random_batch(TRAIN_BATCH, TRAIN_SIZE) for _ in range(TRAIN_BATCHES)]
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    training = interleave(
        {"DDColor-T training step": lambda: lightning_rate(module, batches, accelerator)},
        "ddcolor training",
        warmup=0,  # each fit warms up in its first batch
        min_rounds=2,
        budget_s=20,
    )
    train_rate = training.rates["DDColor-T training step"]
    tiny, large = (measured.ratios[f"DDColor-{size} 256 px fp32"].median for size in "TL")
    if "bf16" in precisions(device):
        bf16 = {size: measured.ratios[f"DDColor-{size} 256 px bf16"].median for size in "TL"}
        in_bf16 = (
            f"in bf16 they reach {bf16['T']:.2f}x and {bf16['L']:.2f}x it (ECCV16 itself "
            f"{measured.ratios['ECCV16 256 px bf16'].median:.2f}x)"
        )
    else:
        in_bf16 = "bf16 is not measured: this CPU has no bf16 matrix units (AVX512-BF16, AMX)"
    return Section(
        title="DDColor: inference beside ECCV16, and the training step",
        body=(
            f"{where}; random weights; batch 1. Images/s, median (min-max) over interleaved rounds, ratios to "
            f"{BASELINE} paired per round.\n\n"
            + table(["model, side, precision", "img/s", f"vs {BASELINE}"], rows)
            + f"\nDDColor-T's training step (`model=ddcolor`), batch {TRAIN_BATCH} at {TRAIN_SIZE} px, through "
            f"Lightning's loop: {train_rate.cell('{:.2f}')} img/s over {len(train_rate.values)} fits of "
            f"{TRAIN_BATCHES - 1} timed batches.\n"
        ),
        conclusion=(
            f"At 256 px in fp32 DDColor-T runs at {tiny:.2f}x and DDColor-L at {large:.2f}x ECCV16's rate; {in_bf16}; "
            f"DDColor-T trains at {train_rate.median:.2f} img/s at {TRAIN_SIZE} px."
        ),
        summary=Summary(
            "DDColor: inference vs ECCV16 (256 px, fp32), and training",
            f"DDColor-T {tiny:.2f}x, DDColor-L {large:.2f}x ECCV16; DDColor-T trains at {train_rate.median:.2f} img/s",
        ),
    )
