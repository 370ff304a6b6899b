"""Inference speed of every family through `colorize_full`, and Zhang et al.'s two against the official code.

Part 1: each family (random weights, its default config) colorizes 256-px L batches of 1 and
``BENCH_INFER_BATCH`` (16) images in four ways, interleaved: fp32 (the baseline), bf16 autocast,
channels-last weights (fp32), and ``torch.compile`` of the networks (fp32; compiled once before
timing). Part 2: ECCV16 and SIGGRAPH17 at 256 px against the official ``colorizers`` package
(``rz-colorization``, installed with ``--no-deps`` by ``make bench``) on the same weights: random
weights in the official layout, written to a release file that both load. Part 3: the accuracy
cost of bf16, ΔE*ab (CIE76 with the same L) between bf16 and fp32 outputs on the built-in test
photos at full resolution.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from benchmarks.families import FAMILIES, build
from benchmarks.timing import SMOKE, interleave, rate, say, table
from colorization.color.spaces import rgb_to_lab
from colorization.files.builtin_photos import TEST_PHOTOS, load_photo
from colorization.inference.loading import load_colorizer
from colorization.inference.runtime import compile_networks, prepare_for_inference
from colorization.metrics.image import delta_e_cie76
from colorization.modules.base import ColorizerModule

SIZE = 256
BATCH = int(os.environ.get("BENCH_INFER_BATCH", "4"))
"""The larger batch (besides 1). 16 is the GPU check's; on a 2-core CPU a batch of 16 ECCV16 images
takes 15-80 s per call, which `make bench`'s 10 minutes cannot hold for every variant and family."""
SINGLE_ONLY = () if os.environ.get("BENCH_INFER_FULL") == "1" else ("cwgan", "eccv16", "siggraph17")
"""Families measured at batch 1 only unless ``BENCH_INFER_FULL=1``: at 256 px one of their images
takes seconds on a 2-core CPU, so a larger batch shows the same ratios at several times the cost."""
COMPILE = os.environ.get("BENCH_COMPILE", "cnn" if SMOKE else "cnn,pix2pix").split(",")
"""Families whose compiled variant is measured (compiling takes tens of seconds each on a small CPU)."""
OFFICIAL = {"eccv16": "eccv16", "siggraph17": "siggraph17"}
OFFICIAL_BATCH = int(os.environ.get("BENCH_OFFICIAL_BATCH", "1"))


def inference_variants(model: ColorizerModule, l: torch.Tensor, compile_: bool) -> dict:
    """fp32 / bf16 / channels_last / compile calls of `colorize_full` on `l`, each returning images/s."""
    images = l.shape[0]
    fp32 = prepare_for_inference(model)
    channels_last = prepare_for_inference(copy.deepcopy(model), channels_last=True)
    variants = {
        "fp32": rate(lambda: fp32.colorize_full(l), images),
        "bf16": rate(lambda: fp32.colorize_full(l, precision="bf16"), images),
        "channels_last": rate(lambda: channels_last.colorize_full(l), images),
    }
    if compile_:
        compiled = copy.deepcopy(model)
        compile_networks(compiled)
        variants["compile"] = rate(lambda: compiled.colorize_full(l), images)
    return variants


def family_rows() -> list[list[str]]:
    rows = []
    for family in FAMILIES:
        for batch in (1,) if family in SINGLE_ONLY else (1, BATCH):
            model = build(family)
            l = torch.rand(batch, 1, SIZE, SIZE) * 100
            measured = interleave(
                inference_variants(model, l, family in COMPILE), f"{family} batch {batch}", budget_s=5, max_rounds=6
            )
            cells = [measured.rates["fp32"].cell("{:.1f}")]
            cells += [measured.ratios[name].cell(suffix="x") for name in ("bf16", "channels_last")]
            cells.append(measured.ratios["compile"].cell(suffix="x") if "compile" in measured.ratios else "-")
            rows.append([family, str(batch), *cells, str(len(measured.rates["fp32"].values))])
    return rows


def official_networks() -> tuple[ModuleType, ModuleType] | None:
    """The official package's network modules, or None when ``rz-colorization`` is not installed.

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
    return importlib.import_module("colorizers.siggraph17"), importlib.import_module("colorizers.eccv16")


def release_pair(kind: str, directory: Path) -> tuple[torch.nn.Module, ColorizerModule] | None:
    """The official `kind` network with random weights and our colorizer loaded from the same weights."""
    modules = official_networks()
    if modules is None:
        return None
    module = modules[1] if kind == "eccv16" else modules[0]
    official = getattr(module, OFFICIAL[kind])(pretrained=False).eval()
    path = directory / f"{kind}-random.pth"
    torch.save(official.state_dict(), path)
    return official, load_colorizer(path)


def official_rows(batch: int) -> list[list[str]] | None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in OFFICIAL:
            pair = release_pair(kind, Path(tmp))
            if pair is None:
                return None
            official, ours = pair
            l = torch.rand(batch, 1, SIZE, SIZE) * 100

            @torch.no_grad()
            def run_official(official=official, l=l) -> torch.Tensor:
                return torch.cat([l, official(l)], dim=1)  # the release's forward: ab at the input size

            ours_cl = prepare_for_inference(copy.deepcopy(ours), channels_last=True)
            measured = interleave(
                {
                    "official (fp32)": rate(run_official, batch),
                    "ours fp32": rate(lambda ours=ours, l=l: ours.colorize_full(l), batch),
                    "ours bf16": rate(lambda ours=ours, l=l: ours.colorize_full(l, precision="bf16"), batch),
                    "ours bf16 + channels_last": rate(
                        lambda m=ours_cl, l=l: m.colorize_full(l, precision="bf16"), batch
                    ),
                },
                f"{kind} vs official, batch {batch}",
                budget_s=10,
            )
            for name in measured.names:
                rows.append([kind, name, measured.rates[name].cell("{:.2f}"), measured.ratios[name].cell(suffix="x")])
    return rows


def test_photo_l() -> list[torch.Tensor]:
    """L (1, 1, H, W) of the built-in test photos at full resolution."""
    photos = [torch.from_numpy(np.ascontiguousarray(load_photo(name))) for name in TEST_PHOTOS]
    return [rgb_to_lab(p.permute(2, 0, 1)[None].float() / 255)[:, :1] for p in photos]


def accuracy_rows() -> list[list[str]]:
    rows = []
    photos = test_photo_l()
    for family in FAMILIES:
        model = prepare_for_inference(build(family))
        errors, spread = [], []
        for l in photos:
            fp32 = model.colorize_full(l)
            bf16 = model.colorize_full(l, precision="bf16")
            errors.append(delta_e_cie76(bf16, fp32).flatten())
            spread.append(fp32[:, 1:].flatten(1).std(1))
        error = torch.cat(errors)
        say(f"{family}: bf16 vs fp32 ΔE*ab mean {error.mean():.3f}, max {error.max():.3f}")
        rows.append([family, f"{error.mean():.3f}", f"{error.max():.2f}", f"{torch.cat(spread).mean():.2f}"])
    return rows


def run() -> str:
    families = table(
        ["family", "batch", "fp32 img/s", "bf16 vs fp32", "channels_last vs fp32", "compile vs fp32", "rounds"],
        family_rows(),
    )
    official = official_rows(OFFICIAL_BATCH)
    accuracy = table(["family", "mean ΔE*ab", "max ΔE*ab", "std of fp32 a, b"], accuracy_rows())
    parts = [
        f"## Inference: `colorize_full` at {SIZE} px\n",
        "Random weights (each family's default config), L batches of 1 and "
        f"{BATCH} images at {SIZE}x{SIZE} ({', '.join(SINGLE_ONLY) or 'none'}: batch 1 only; "
        "`BENCH_INFER_FULL=1 BENCH_INFER_BATCH=16` for the whole matrix). "
        "Rates: median (min-max) over interleaved rounds; ratios are "
        "paired per round. `compile`: `torch.compile` of the networks (inductor), compiled before "
        f"timing; measured for {', '.join(COMPILE)} (`BENCH_COMPILE=...` for others).\n",
        families,
        f"### ECCV16 and SIGGRAPH17 vs the official code, batch {OFFICIAL_BATCH}\n",
    ]
    if official is None:
        parts.append("Not measured: the official `colorizers` package is not installed (`make bench` installs it).\n")
    else:
        parts += [
            "The official `colorizers` networks (`rz-colorization` 1.0.5) with random weights in the official "
            "layout, saved as a release file that ours loads (`load_colorizer`): the same weights. The official "
            "call is its network's forward on the L batch (ab at the input size), under `torch.no_grad`.\n",
            table(["model", "code", "img/s", "vs official"], official),
        ]
    parts += [
        "### Accuracy of bf16: ΔE*ab of bf16 vs fp32 outputs\n",
        f"The built-in test photos ({', '.join(TEST_PHOTOS)}) at full resolution, every pixel; random "
        "weights, so the last column gives the size of the colours being compared.\n",
        accuracy,
    ]
    return "\n".join(parts)
