"""DDColor's speed: inference of DDColor-T/L at 256 and 512 px in float32 and bfloat16 beside ECCV16,
and the training step of DDColor-T at 128 px.

Inference times `colorize` (gray sRGB in, ab out; the network's forward plus the Lab conversions)
on one random image of L, random weights, in eval mode under ``torch.no_grad``; bfloat16 runs
under ``torch.autocast`` on the device (CPU or CUDA). Variants are interleaved round by round and
each reports its median seconds per image. The training step is the real
`DDColorModule.training_step` through Lightning (generator then discriminator, AdamW/Adam,
the authors' losses without the perceptual term, which needs the VGG weights file), batch 4 (the
authors' batch per GPU). ``python -m benchmarks ddcolor``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable

import torch

from benchmarks.bench_gan import WARMUP_BATCHES, images_per_second
from benchmarks.timing import SMOKE
from colorization.inference.runtime import resolve_device
from colorization.jobs.devices import Timer
from colorization.modules import DDColorModule, ECCV16Module
from colorization.modules.base import ColorizerModule

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


SIDES = (256, 512) if os.environ.get("BENCH_DDCOLOR_FULL") == "1" else (256,)
"""DDColor's sides: its native 512 only with ``BENCH_DDCOLOR_FULL=1`` (on a CPU a 512-px DDColor-L image takes
seconds, most of `make bench`'s time)."""


def models() -> dict[str, tuple[Callable[[], ColorizerModule], tuple[int, ...]]]:
    """Name -> (builder, sides it is timed at). ECCV16 runs at its native 256 px."""
    return {
        "DDColor-T": (lambda: DDColorModule(size="tiny"), SIDES),
        "DDColor-L": (lambda: DDColorModule(size="large"), SIDES),
        "ECCV16": (lambda: ECCV16Module(), (256,)),
    }


def seconds_per_image(model: ColorizerModule, side: int, dtype: torch.dtype | None, device: torch.device) -> float:
    """Wall seconds of one `colorize` of a (1, 1, side, side) L at `dtype` (None: float32)."""
    l = torch.rand(1, 1, side, side, device=device) * 100
    timer = Timer()
    autocast = torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
    with torch.no_grad(), autocast, timer.timed(device):
        model.colorize(l)
    return timer.seconds


def inference_table(rounds: int, device: torch.device) -> list[str]:
    rows = ["| model | side | fp32 img/s | bf16 img/s | bf16 vs fp32 |", "|---|---|---|---|---|"]
    for name, (build, sides) in models().items():
        model = build().eval().to(device)
        variants = [(side, precision) for side in sides for precision in PRECISIONS]
        times: dict[tuple[int, str], list[float]] = {v: [] for v in variants}
        for variant in variants:  # warm-up: first-call allocations and kernel selection
            seconds_per_image(model, variant[0], PRECISIONS[variant[1]], device)
        for _ in range(rounds):
            for side, precision in variants:
                times[side, precision].append(seconds_per_image(model, side, PRECISIONS[precision], device))
        for side in sides:
            fp32, bf16 = (1 / statistics.median(times[side, p]) for p in PRECISIONS)
            rows.append(f"| {name} | {side} | {fp32:.3g} | {bf16:.3g} | {bf16 / fp32:.2f}x |")
        del model
    return rows


def run(rounds: int = 1 if SMOKE else 3, train_batches: int = 1 if SMOKE else 3) -> str:
    device = resolve_device("auto")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    lines = [f"## DDColor inference, batch 1, {where} (median of {rounds} rounds)", *inference_table(rounds, device)]
    speed, trained_on = images_per_second(["model=ddcolor"], batch=4, size=128, batches=WARMUP_BATCHES + train_batches)
    lines += [
        "",
        f"## DDColor-T training step, batch 4, 128x128, {trained_on}",
        "| model | img/s (training_step) |",
        "|---|---|",
        f"| DDColor-T (L1 + GAN + colourfulness) | {speed:.3g} |",
    ]
    return "\n".join(lines) + "\n"
