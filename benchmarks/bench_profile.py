"""Where the time goes: `torch.profiler` of the study CNN's training step and ECCV16's forward.

Each is profiled over a few calls after a warm-up, with FLOP counting (convolutions and matrix
products). The achieved GFLOP/s is set against what this CPU reaches on one large matrix product
and one large convolution in the same process, measured right before: the gap says whether a model
is compute-bound (close to the peak) or bound by memory traffic and per-operator overhead.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.families import build, random_batch
from benchmarks.loops import plain_step
from benchmarks.timing import say, table
from colorization.inference.runtime import prepare_for_inference

CALLS = 2
TOP = 6
PEAK_REPEATS = 10


def peak_gflops() -> dict[str, float]:
    """GFLOP/s of a 1024^3 matrix product (fp32 and bf16) and of a 3x3 convolution (fp32, 128 -> 128 channels)."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a16, b16 = a.bfloat16(), b.bfloat16()
    x, conv = torch.randn(4, 128, 56, 56), torch.nn.Conv2d(128, 128, 3, padding=1, bias=False)
    work = {
        "fp32 matmul 1024^3": (lambda: a @ b, 2 * 1024**3),
        "fp32 conv 3x3 128->128 @ 56^2 x4": (lambda: conv(x), 2 * 4 * 128 * 128 * 9 * 56 * 56),
        "bf16 matmul 1024^3": (lambda: a16 @ b16, 2 * 1024**3),
    }
    best = {}
    with torch.no_grad():
        for name, (fn, flops) in work.items():
            fn()
            times = []
            for _ in range(PEAK_REPEATS):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            best[name] = flops / min(times) / 1e9  # the best run: the machine's capacity, not its load
            say(f"peak {name}: {best[name]:.1f} GFLOP/s")
    return best


def profiled(fn: Callable[[], object], images: int) -> tuple[float, float, list[list[str]]]:
    """(GFLOP per image, seconds per image, top operators by self CPU time) of `fn`."""
    fn()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        elapsed = time.perf_counter() - start
    events = prof.key_averages()
    flops = sum(e.flops for e in events if e.flops)
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:TOP]
    rows = [[e.key, f"{100 * e.self_cpu_time_total / total:.0f}%", str(e.count // CALLS)] for e in top]
    return flops / CALLS / images / 1e9, elapsed / CALLS / images, rows


def run() -> str:
    peaks = peak_gflops()
    peak = {"fp32": max(v for k, v in peaks.items() if k.startswith("fp32")), "bf16": peaks["bf16 matmul 1024^3"]}
    cnn = build("cnn")
    batch = random_batch(16, 128)
    step = plain_step(cnn)
    eccv16 = prepare_for_inference(build("eccv16"))
    l = torch.rand(2, 1, 256, 256) * 100
    cases = {
        "CNN (model1) training step, batch 16 at 128 px": (lambda: step(batch), 16, "fp32", "cnn"),
        "ECCV16 `colorize_full`, fp32, batch 2 at 256 px": (lambda: eccv16.colorize_full(l), 2, "fp32", "eccv16"),
        "ECCV16 `colorize_full`, bf16, batch 2 at 256 px": (
            lambda: eccv16.colorize_full(l, precision="bf16"),
            2,
            "bf16",
            "eccv16",
        ),
    }
    summary, details = [], []
    counted: dict[int, float] = {}
    for name, (fn, images, precision, network) in cases.items():
        gflop, seconds, top = profiled(fn, images)
        # the same network does the same work in either precision (fp32 measured first); under
        # autocast the profiler attributes each convolution's FLOPs twice (cast wrapper and kernel)
        gflop = counted.setdefault(network, gflop)
        achieved = gflop / seconds
        share = achieved / peak[precision]
        say(f"{name}: {gflop:.2f} GFLOP/image, {achieved:.1f} GFLOP/s ({share:.0%} of the {precision} peak)")
        summary.append([name, f"{gflop:.3f}", f"{1 / seconds:.2f}", f"{achieved:.1f}", f"{share:.0%}"])
        details.append(f"**{name}**, operators by self CPU time:\n\n" + table(["operator", "share", "calls"], top))
    peak_line = ", ".join(f"{name}: {value:.1f} GFLOP/s" for name, value in peaks.items())
    return (
        "## Profiles: FLOPs per image vs this CPU's measured throughput\n\n"
        f"Peaks measured in the same process (best of {PEAK_REPEATS}): {peak_line}. Profiles: `torch.profiler` "
        f"with FLOP counting over {CALLS} calls after a warm-up; FLOPs are those of convolutions and matrix "
        "products (a training step counts forward and backward); `of peak`: against the best fp32 (or bf16) "
        "peak above. Under a shared machine's load a peak can come out low and a share above 100%.\n\n"
        + table(["case", "GFLOP/image", "img/s (profiled)", "GFLOP/s", "of peak"], summary)
        + "\n"
        + "\n".join(details)
    )
