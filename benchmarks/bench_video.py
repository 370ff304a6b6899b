"""Colorizing a film: its frame rate next to the bare network's, what the temporal filter costs, and its memory.

Writes a grainy gray 854x480 film (`FRAMES` frames of a pan over a photo, as the tests make them), then
measures, in interleaved rounds (`benchmarks.timing.interleave`), frames per second of

- the network alone: ECCV16 (random weights: speed does not depend on what it learned) on the film's
  frames already decoded and shrunk to its 256x256 working size, in batches of `BATCH`;
- the film colorized as ``colorize`` does it (`colorization.inference.films.colorize_film`: decoding,
  the network, the chroma, encoding, overlapped in three threads), with ``--deflicker none`` and with
  the default filter;
- the same pipeline with a network that costs nothing: what decoding, chroma and encoding alone allow.

Then, one thread for everything, what each CPU stage costs per frame (decoding + encoding, the chroma
at 480p, the filter at ECCV16's working size and at the film's own size), and the peak memory (RSS) of
a process colorizing a 10-second and a 2-minute film (320x240, the study's CNN: memory does not depend
on the network's speed). Torch computes with ``BENCH_THREADS`` threads (default 1), the other stages
with what PyAV, x264 and OpenCV choose, as in ``colorize``. Environment: ``BENCH_FRAMES`` (default 16).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from skimage import data as skdata

from benchmarks.sections import Section, Summary, verdict
from benchmarks.timing import SMOKE, interleave, rate, say, table
from colorization.color.spaces import lab_to_rgb_keep_l
from colorization.inference.base import attach_ab
from colorization.inference.films import colorize_film, stream_film
from colorization.inference.running import Plan, Runner
from colorization.inference.zhang import ECCV16Colorizer
from colorization.video.deflicker import Deflicker
from colorization.video.io import luma_plane, open_film, probe
from colorization.video.ycbcr import YCbCrSpec, luma_to_l, rgb_to_cbcr
from tests.helpers.clips import film_clip, write_film

FRAMES = int(os.environ.get("BENCH_FRAMES", 3 if SMOKE else 16))
BATCH = 8
WIDTH, HEIGHT = 854, 480
MEMORY_SIZE = (320, 240)
MEMORY_SECONDS = (1, 2) if SMOKE else (10, 120)
FPS = 24
ROOT = Path(__file__).resolve().parents[1]
DEVICE = torch.device("cpu")


def write_long_film(path: Path, seconds: int, size: tuple[int, int] = MEMORY_SIZE) -> Path:
    """A gray film of `seconds` at `FPS`: a window panning over a photo, fresh grain every frame, written as it
    is made (the clips of `tests.helpers.clips` are built whole in memory, which a 2-minute film must not be)."""
    width, height = size
    photo = cv2.resize(skdata.camera(), (2 * width, 2 * height), interpolation=cv2.INTER_AREA).astype(np.float32)
    rng = np.random.default_rng(0)
    frames = seconds * FPS
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            left, top = round(width * t / frames), round(height * t / frames)
            window = photo[top : top + height, left : left + width] + rng.normal(0, 5, (height, width))
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, values in zip(frame.planes, (np.clip(window, 0, 255).astype(np.uint8), 128, 128), strict=True):
                rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
                rows[:, : plane.width] = values
            frame.pts, frame.time_base = t, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


MEMORY_CHILD = """
import json, re, sys, torch
from colorization.inference.direct import DirectColorizer
from colorization.inference.films import colorize_film
from colorization.networks.cnn import StudyCNN
torch.set_num_threads(1)
def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
samples = []
def sample(progress):
    if progress.frames >= (len(samples) + 1) * progress.total / 10:
        samples.append((progress.frames, status("VmRSS")))
model = DirectColorizer(StudyCNN).eval()
result = colorize_film(sys.argv[1], sys.argv[2], model, size=96, device="cpu", progress=sample)
print(json.dumps({"frames": result.frames, "peak_kb": status("VmHWM"), "samples": samples}))
"""
"""A fresh process colorizes one film and prints its frame count, its peak RSS (kB, Linux's VmHWM: getrusage's
ru_maxrss would count the parent's size, which a child carries until it execs) and its RSS after each tenth."""


def peak_memory(film: Path, out: Path) -> dict:
    """What `MEMORY_CHILD` reports on `film`."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(film), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=1800,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def decode_encode(path: Path, spec: YCbCrSpec) -> None:
    """Decode every frame of `path` and encode it again (Y' kept, neutral chroma) into memory, one thread."""
    with av.open(str(path)) as source, av.open(io.BytesIO(), "w", format="mp4") as target:
        stream = source.streams.video[0]
        stream.thread_count = 1
        video = target.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "18", "threads": "1"}
        for frame in source.decode(stream):
            out = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for plane, values in zip(out.planes, (luma_plane(frame, spec), 128, 128), strict=True):
                rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
                rows[:, : plane.width] = values
            out.pts = frame.pts
            target.mux(video.encode(out))
        target.mux(video.encode(None))


def chroma(ls: list[torch.Tensor], ab_small: torch.Tensor, spec: YCbCrSpec) -> None:
    """The pipeline's per-frame work besides the network and the filter (`inference.films._Pipeline._chroma`)."""
    for l in ls:
        rgb_to_cbcr(lab_to_rgb_keep_l(attach_ab(l[None], ab_small[None]))[0], spec, subsample=True)


def filtered(ls: list[torch.Tensor], abs_: list[torch.Tensor]) -> None:
    deflicker = Deflicker()
    for l, ab in zip(ls, abs_, strict=True):
        deflicker(l, ab)


def speed_table(path: Path, tmp: Path) -> tuple[str, dict]:
    """Frames/s of the film pipeline next to the bare network (and the pipeline with no network)."""
    model = ECCV16Colorizer().eval()
    plan, runner = Plan.of(model), Runner(model, DEVICE, "fp32")
    spec = probe(path).ycbcr
    with open_film(path) as film:
        small = torch.stack([plan.shrink(luma_to_l(frame.y, spec)) for frame in film.frames()])

    def network() -> None:
        for start in range(0, len(small), BATCH):
            runner(small[start : start + BATCH])

    def film(deflicker: str) -> None:
        colorize_film(path, tmp / "out.mp4", model, device=DEVICE, deflicker=deflicker, batch_size=BATCH)

    def no_network() -> None:
        free = lambda l: torch.zeros(len(l), 2, *l.shape[-2:])  # noqa: E731
        stream_film(path, tmp / "free.mp4", free, plan.shrink, deflicker="none", batch_size=BATCH)

    cpu: dict[str, list[float]] = {}

    def measured_rate(name: str, fn: Callable[[], None]) -> Callable[[], float]:
        """`rate(fn, FRAMES)`, also noting the process's CPU seconds per frame (every thread counted)."""
        timed = rate(fn, FRAMES)

        def call() -> float:
            start = time.process_time()
            frames_per_s = timed()
            cpu.setdefault(name, []).append((time.process_time() - start) / FRAMES)
            return frames_per_s

        return call

    variants = {
        "ECCV16 alone (256x256, decoded frames)": network,
        "film, --deflicker none": lambda: film("none"),
        "film, default filter": lambda: film("flow"),
        "film, a network that costs nothing": no_network,
    }
    measured = interleave(
        {name: measured_rate(name, fn) for name, fn in variants.items()}, "video", unit="frames/s", budget_s=90.0
    )
    rows = [
        [
            name,
            measured.rates[name].cell("{:.2f}"),
            f"{1000 / measured.rates[name].median:.0f}",
            f"{1000 * statistics.median(cpu[name]):.0f}",
            measured.ratios[name].cell("{:.2f}", "x"),
        ]
        for name in measured.names
    ]
    names = measured.names
    figures = {
        "off": measured.ratios[names[1]].median,
        "filter_share": measured.rates[names[1]].median / measured.rates[names[2]].median - 1,
        "frame_ms": 1000 / measured.rates[names[2]].median,
        "cpu_off": statistics.median(cpu[names[0]]) / statistics.median(cpu[names[1]]),
    }
    header = ["colorizing the 854x480 film", "frames/s", "ms/frame", "CPU ms/frame", "rate vs the network alone"]
    return table(header, rows), figures


def stage_table(path: Path, clip_ab: torch.Tensor, frame_ms: float) -> str:
    """Per-frame costs of the CPU stages, one thread each, side by side."""
    cv2_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        spec = probe(path).ycbcr
        with open_film(path) as film:
            ls = [luma_to_l(frame.y, spec) for frame in film.frames()]
        generator = torch.Generator().manual_seed(0)
        small = [torch.nn.functional.interpolate(l[None], size=(256, 256), mode="area")[0] for l in ls]
        abs_small = [20 * torch.randn(2, 256, 256, generator=generator) for _ in ls]
        abs_full = [20 * torch.randn(2, HEIGHT, WIDTH, generator=generator) for _ in ls]
        scene_ab = torch.nn.functional.interpolate(clip_ab[:1], size=(256, 256), mode="area")[0]  # smooth, as predicted
        variants = {
            "decoding + encoding (crf 18)": rate(lambda: decode_encode(path, spec), FRAMES),
            "chroma at 854x480 (ab upsampled, Lab -> sRGB keeping L, Cb/Cr)": rate(
                lambda: chroma(ls, scene_ab, spec), FRAMES
            ),
            "filter at 256x256 (ECCV16's working size)": rate(lambda: filtered(small, abs_small), FRAMES),
            "filter at 854x480 (a network at the film's size)": rate(lambda: filtered(ls, abs_full), FRAMES),
        }
        measured = interleave(variants, "video stages", unit="frames/s")
    finally:
        cv2.setNumThreads(cv2_threads)
        torch.set_num_threads(torch_threads)
    costs = {name: 1000 / measured.rates[name].median for name in measured.names}
    rows = [[name, f"{ms:.1f}", f"{100 * ms / frame_ms:.1f}%"] for name, ms in costs.items()]
    return table(["one thread", "ms/frame", "share of a filtered film's frame (ECCV16)"], rows)


def memory_table(tmp: Path) -> tuple[str, float]:
    peaks = {}
    for seconds in MEMORY_SECONDS:
        film = write_long_film(tmp / f"long{seconds}.mp4", seconds)
        peaks[seconds] = peak_memory(film, tmp / f"long{seconds}_out.mp4")
        peak = peaks[seconds]
        say(f"video memory: {seconds} s film, {peak['frames']} frames, peak RSS {peak['peak_kb'] / 1024:.0f} MB")
    short, long = (peaks[seconds]["peak_kb"] / 1024 for seconds in MEMORY_SECONDS)
    rows = [
        [
            f"{seconds} s ({peaks[seconds]['frames']} frames)",
            f"{peaks[seconds]['peak_kb'] / 1024:.0f}",
            ", ".join(f"{kb / 1024:.0f}" for _, kb in peaks[seconds]["samples"]),
        ]
        for seconds in MEMORY_SECONDS
    ]
    header = [
        f"colorizing a {MEMORY_SIZE[0]}x{MEMORY_SIZE[1]} film (the study's CNN, filter on)",
        "peak RSS MB",
        "RSS MB after each tenth of the film",
    ]
    return table(header, rows), long / short


def run() -> Section:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        clip = film_clip(FRAMES, HEIGHT, WIDTH)
        path = write_film(tmp / "film.mp4", clip.gray)
        speeds, figures = speed_table(path, tmp)
        stages = stage_table(path, clip.ab, figures["frame_ms"])
        memory, growth = memory_table(tmp)
    off, share = figures["off"], figures["filter_share"]
    body = (
        f"A grainy gray {WIDTH}x{HEIGHT} film of {FRAMES} frames at {FPS} fps; ECCV16 at its 256x256 working "
        f"size in batches of {BATCH}, fp32 on the CPU. CPU ms/frame counts every thread of the process: the "
        f"network's share of the film's CPU time ({figures['cpu_off']:.2f} with the filter off) is the rate a "
        "machine with no core to spare would reach.\n\n"
        f"{speeds}\n{stages}\n{memory}\n"
        "GPU (1080p, bf16, goal at least 0.5x the network alone): not measured (no GPU lent).\n"
    )
    conclusion = (
        f"With the filter off a film runs at {off:.2f}x the network alone, the default filter adds "
        f"{100 * share:.0f}% to a frame's time, and a {MEMORY_SECONDS[1]}-second film peaks at {growth:.2f}x the "
        f"memory of a {MEMORY_SECONDS[0]}-second one: frames stream through bounded queues."
    )
    met = off >= 0.8 and share <= 0.2 and growth <= 1.1
    summary = Summary(
        f"Films: pipeline vs the network alone; filter cost; memory {MEMORY_SECONDS[0]} s vs {MEMORY_SECONDS[1]} s",
        f"{off:.2f}x; filter +{100 * share:.0f}%; memory {growth:.2f}x",
        ">= 0.8x; <= 20%; the same",
        verdict(met),
    )
    return Section("Colorizing films: the pipeline next to the bare network, the filter's cost, memory", body,
                   conclusion, summary)  # fmt: skip


if __name__ == "__main__":
    print(run().render(""))
