"""Inference: `colorize_full` by precision and memory layout, Zhang et al.'s two against the official code,
and what bf16 costs in colour accuracy.

Part 1: each family's colorizer (random weights, its default config) colorizes 256-px L batches of 1
and ``BENCH_INFER_BATCH`` images, interleaved: fp32 (the baseline), bf16 autocast with the weights cast
once (what `colorize_full` does) and with autocast casting them on every call, channels-last weights,
both, and ``torch.compile`` of the networks (fp32; compiled in the untimed warm-up).
Part 2: ECCV16 and SIGGRAPH17 against the official ``colorizers`` package (``rz-colorization``,
installed with ``--no-deps`` by ``make bench``; its rows are skipped with one line without it) on
the same weights: random weights in the official layout, written to a release file that
`load_colorizer` reads. Part 3: ΔE*ab (CIE76, same L) between bf16 and fp32 outputs on the built-in
test photos at full resolution. Goals: bf16 >= 2x the official code; bf16's mean ΔE*ab < 1.
On a CPU without bf16 matrix units (AVX512-BF16, AMX) bf16 runs on reference kernels that take
minutes per 256-px ECCV16 image: every bf16 figure is then left out, with one line saying why.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from benchmarks.families import FAMILIES, build_colorizer
from benchmarks.sections import Section, Summary, verdict
from benchmarks.timing import SMOKE, Measurement, interleave, rate, say, table
from colorization.color.spaces import rgb_to_lab
from colorization.files.builtin_photos import TEST_PHOTOS, load_photo
from colorization.inference.base import Colorizer
from colorization.inference.loading import load_colorizer
from colorization.inference.runtime import autocast, has_fast_bf16, prepare_for_inference
from colorization.metrics.image import delta_e_cie76

SIZE = 256
BATCH = int(os.environ.get("BENCH_INFER_BATCH", "4"))
"""The larger batch (besides 1). 16 is the GPU check's; on a 2-core CPU a batch of 16 ECCV16 images
takes 15-80 s per call, which `make bench`'s 10 minutes cannot hold for every variant and family."""
SINGLE_ONLY = () if os.environ.get("BENCH_INFER_FULL") == "1" else ("cwgan", "eccv16", "siggraph17")
"""Families measured at batch 1 only unless ``BENCH_INFER_FULL=1``: at 256 px one of their images
takes seconds on a 2-core CPU, so a larger batch shows the same ratios at several times the cost."""
COMPILE = os.environ.get("BENCH_COMPILE", "cnn" if SMOKE else "cnn,pix2pix").split(",")
"""Families whose compiled variant is measured (compiling takes tens of seconds each on a small CPU)."""
FAST_BF16 = has_fast_bf16(torch.device("cpu"))
BF16_CAST_PER_CALL = "bf16, weights cast per call"
LAYOUTS = (("bf16", BF16_CAST_PER_CALL) if FAST_BF16 else ()) + ("channels_last",)
LAYOUTS += ("bf16 + channels_last",) if FAST_BF16 else ()
"""The variants of part 1 besides fp32 and compile, in table order."""
NO_BF16 = "this CPU has no bf16 matrix units (AVX512-BF16, AMX): bf16 not measured"
OFFICIAL = ("eccv16", "siggraph17")
OFFICIAL_BATCH = int(os.environ.get("BENCH_OFFICIAL_BATCH", "1"))
SPEED_GOAL = 2.0
"""bf16 (our default on a GPU, opt-in on a CPU) against the official code's fp32 forward."""
ACCURACY_GOAL = 1.0
"""Mean ΔE*ab of bf16 against fp32: below 1, a difference no one sees side by side."""


def inference_variants(colorizer: Colorizer, l: torch.Tensor, compile_: bool) -> dict:
    """fp32 / bf16 / channels-last / bf16 + channels-last / compile calls of `colorize_full` on `l` (images/s)."""
    images = l.shape[0]
    fp32 = prepare_for_inference(colorizer)
    channels_last = prepare_for_inference(copy.deepcopy(colorizer), channels_last=True)
    variants = {"fp32": rate(lambda: fp32.colorize_full(l), images)}
    if FAST_BF16:
        variants["bf16"] = rate(lambda: fp32.colorize_full(l, precision="bf16"), images)
        variants[BF16_CAST_PER_CALL] = rate(lambda: autocast_on_the_master(fp32, l), images)
    variants["channels_last"] = rate(lambda: channels_last.colorize_full(l), images)
    if FAST_BF16:
        variants["bf16 + channels_last"] = rate(lambda: channels_last.colorize_full(l, precision="bf16"), images)
    if compile_:
        compiled = prepare_for_inference(copy.deepcopy(colorizer), compile=True)
        variants["compile"] = rate(lambda: compiled.colorize_full(l), images)
    return variants


@torch.inference_mode()
def autocast_on_the_master(colorizer: Colorizer, l: torch.Tensor) -> torch.Tensor:
    """bf16 as it ran before `weights_for`: autocast on the float32 weights, cast again on every call
    (`l` at a size the network takes as it is, as `colorize_full` would run it)."""
    with autocast(l.device, "bf16"):
        return colorizer.colorize(l).float()


def family_rows() -> tuple[list[list[str]], dict[str, float]]:
    """Part 1's rows, and per family (batch 1) the rate of bf16 with its weights cast once over bf16
    casting them on every call (empty without bf16 units)."""
    rows, cast_once = [], {}
    for family in FAMILIES:
        for batch in (1,) if family in SINGLE_ONLY else (1, BATCH):
            l = torch.rand(batch, 1, SIZE, SIZE) * 100
            measured = interleave(
                inference_variants(build_colorizer(family), l, family in COMPILE),
                f"{family} batch {batch}",
                budget_s=5,
                max_rounds=6,
            )
            cells = [measured.rates["fp32"].cell("{:.1f}")]
            cells += [measured.ratios[name].cell(suffix="x") for name in LAYOUTS]
            cells.append(measured.ratios["compile"].cell(suffix="x") if "compile" in measured.ratios else "-")
            rows.append([family, str(batch), *cells, str(len(measured.rates["fp32"].values))])
            if FAST_BF16 and batch == 1:
                cast_once[family] = measured.ratios["bf16"].median / measured.ratios[BF16_CAST_PER_CALL].median
    return rows, cast_once


def official_networks() -> dict[str, ModuleType] | None:
    """The official package's network module of each of `OFFICIAL`, or None when ``rz-colorization`` is not installed.

    Its ``__init__`` also imports demo helpers that need matplotlib and IPython (which the networks
    do not use and the project does not install), so the package is entered without running it.
    """
    if "colorizers" not in sys.modules:
        spec = importlib.util.find_spec("colorizers")
        if spec is None or not spec.submodule_search_locations:
            return None
        package = ModuleType("colorizers")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["colorizers"] = package
    if "IPython" not in sys.modules:  # `from IPython import embed`, never called
        sys.modules["IPython"] = ModuleType("IPython")
        sys.modules["IPython"].embed = None
    return {kind: importlib.import_module(f"colorizers.{kind}") for kind in OFFICIAL}


def official_rows(batch: int) -> tuple[list[list[str]], dict[str, Measurement]] | None:
    """Table rows and measurements of ours vs the official code, or None without the official package."""
    modules = official_networks()
    if modules is None:
        return None
    rows, measurements = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in OFFICIAL:
            official = getattr(modules[kind], kind)(pretrained=False).eval()  # the module's builder has its name
            path = Path(tmp) / f"{kind}-random.pth"
            torch.save(official.state_dict(), path)
            ours = load_colorizer(path)
            ours_cl = prepare_for_inference(copy.deepcopy(ours), channels_last=True)
            l = torch.rand(batch, 1, SIZE, SIZE) * 100

            @torch.no_grad()
            def run_official(official=official, l=l) -> torch.Tensor:
                return torch.cat([l, official(l)], dim=1)  # the release's forward: ab at the input size

            variants = {
                "official (fp32)": rate(run_official, batch),
                "ours fp32": rate(lambda ours=ours, l=l: ours.colorize_full(l), batch),
            }
            if FAST_BF16:
                variants["ours bf16"] = rate(lambda ours=ours, l=l: ours.colorize_full(l, precision="bf16"), batch)
                variants["ours bf16 + channels_last"] = rate(
                    lambda m=ours_cl, l=l: m.colorize_full(l, precision="bf16"), batch
                )
            measured = interleave(variants, f"{kind} vs official, batch {batch}", budget_s=10)
            measurements[kind] = measured
            for name in measured.names:
                rows.append([kind, name, measured.rates[name].cell("{:.2f}"), measured.ratios[name].cell(suffix="x")])
    return rows, measurements


def test_photo_l() -> list[torch.Tensor]:
    """L (1, 1, H, W) of the built-in test photos at full resolution."""
    photos = [torch.from_numpy(np.ascontiguousarray(load_photo(name))) for name in TEST_PHOTOS]
    return [rgb_to_lab(p.permute(2, 0, 1)[None].float() / 255)[:, :1] for p in photos]


def accuracy_rows() -> tuple[list[list[str]], dict[str, float]]:
    """Table rows, and the mean ΔE*ab of bf16 vs fp32 per family."""
    rows, means = [], {}
    photos = test_photo_l()
    for family in FAMILIES:
        colorizer = prepare_for_inference(build_colorizer(family))
        errors, spread = [], []
        for l in photos:
            fp32 = colorizer.colorize_full(l)
            bf16 = colorizer.colorize_full(l, precision="bf16")
            errors.append(delta_e_cie76(bf16, fp32).flatten())
            spread.append(fp32[:, 1:].flatten(1).std(1))
        error = torch.cat(errors)
        means[family] = float(error.mean())
        say(f"{family}: bf16 vs fp32 ΔE*ab mean {error.mean():.3f}, max {error.max():.3f}")
        rows.append([family, f"{error.mean():.3f}", f"{error.max():.2f}", f"{torch.cat(spread).mean():.2f}"])
    return rows, means


def run() -> Section:
    if not FAST_BF16:
        say(NO_BF16)
    families, cast_once = family_rows()
    official = official_rows(OFFICIAL_BATCH)
    accuracy, mean_errors = accuracy_rows() if FAST_BF16 else ([], {})
    body = [
        f"Each family's colorizer with random weights, L batches of 1 and {BATCH} images at {SIZE}x{SIZE} "
        f"({', '.join(SINGLE_ONLY) or 'none'}: batch 1 only; `BENCH_INFER_FULL=1 BENCH_INFER_BATCH=16` for "
        "every batch). `compile`: `torch.compile` of the networks (inductor), measured for "
        f"{', '.join(COMPILE)} (`BENCH_COMPILE=...` for others). Median (min-max) over interleaved rounds, "
        "ratios paired per round.\n",
        table(
            ["family", "batch", "fp32 img/s", *(f"{name} vs fp32" for name in LAYOUTS), "compile vs fp32", "rounds"],
            families,
        ),
        f"Ours vs the official code (ECCV16 and SIGGRAPH17, batch {OFFICIAL_BATCH}):\n",
    ]
    if official is None:
        body.append("Not measured: the official code (`rz-colorization`) is not installed; `make bench` installs it.\n")
        speed_figure, fast = "official code not installed", None
    else:
        rows, measurements = official
        body += [
            f"The official `colorizers` networks (`rz-colorization` {version('rz-colorization')}) with random "
            "weights, saved as a release "
            "file that ours loads (`load_colorizer`): the same weights. The official call is its network's forward "
            "on the L batch (ab at the input size) under `torch.no_grad`.\n",
            table(["model", "code", "img/s", "vs official"], rows),
        ]
        speed_figure, fast = official_figure(measurements)
    if not FAST_BF16:
        body.append(f"bf16 against fp32: {NO_BF16}.\n")
        return Section(
            title="Inference: by precision and layout, and against the official Zhang et al. code",
            body="\n".join(body),
            conclusion=f"Ours against the official code in fp32: {speed_figure}; {NO_BF16}.",
            summary=Summary(
                "Inference vs the official Zhang et al. code, and bf16's colour error (CPU)",
                f"{speed_figure}; {NO_BF16}",
                f"bf16 >= {SPEED_GOAL:.0f}x the official code; mean ΔE*ab < {ACCURACY_GOAL:.0f}",
                "-",
            ),
        )
    body += [
        "bf16 against fp32: ΔE*ab over every pixel of the built-in test photos "
        f"({', '.join(TEST_PHOTOS)}) at full resolution; random weights, so the last column gives the size of "
        "the colours compared.\n",
        table(["family", "mean ΔE*ab", "max ΔE*ab", "std of fp32 a, b"], accuracy),
    ]
    worst = max(mean_errors, key=mean_errors.get)
    accurate = mean_errors[worst] < ACCURACY_GOAL
    accuracy_figure = f"bf16 mean ΔE*ab at most {mean_errors[worst]:.2f} ({worst})"
    cast_figure = "bf16 weights cast once vs per call: " + ", ".join(
        f"{family} {cast_once[family]:.2f}x" for family in OFFICIAL
    )
    if fast is None:
        conclusion = f"Without the official code only accuracy is judged: {accuracy_figure}; {cast_figure}."
        met = verdict(accurate) + " (accuracy only)"
    else:
        conclusion = f"In bf16 ours runs at {speed_figure}, {cast_figure}, and {accuracy_figure}."
        met = verdict(fast and accurate)
    return Section(
        title="Inference: by precision and layout, and against the official Zhang et al. code",
        body="\n".join(body),
        conclusion=conclusion,
        summary=Summary(
            "Inference vs the official Zhang et al. code, and bf16's colour error (CPU)",
            f"{speed_figure}; {cast_figure}; {accuracy_figure}",
            f"bf16 >= {SPEED_GOAL:.0f}x the official code; mean ΔE*ab < {ACCURACY_GOAL:.0f}",
            met,
        ),
    )


def official_figure(measurements: dict[str, Measurement]) -> tuple[str, bool | None]:
    """Ours against the official code in words, and whether bf16 meets `SPEED_GOAL` (None: bf16 not measured)."""
    if not FAST_BF16:
        fp32 = ", ".join(f"{kind} {measurements[kind].ratios['ours fp32'].median:.2f}x" for kind in OFFICIAL)
        return f"{fp32} the official code", None
    bf16 = {kind: measured.ratios["ours bf16"].median for kind, measured in measurements.items()}
    both = {kind: measured.ratios["ours bf16 + channels_last"].median for kind, measured in measurements.items()}
    speed = (
        "bf16: "
        + ", ".join(f"{kind} {bf16[kind]:.2f}x" for kind in OFFICIAL)
        + " the official code (with channels-last weights too: "
        + ", ".join(f"{both[kind]:.2f}x" for kind in OFFICIAL)
        + ")"
    )
    return speed, min(bf16.values()) >= SPEED_GOAL
