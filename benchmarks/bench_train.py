"""Training step: what the framework costs against a plain PyTorch loop, and what each config costs.

Framework, per family and crop size, three ways to run the same network and loss, interleaved:

- ``plain``: `benchmarks.loops.plain_step` on float batches in memory (no Trainer, no loader);
- ``bare``: a Lightning Trainer with nothing configured (no logger, checkpoint or progress bar)
  fitting the same in-memory batches: the cost of Lightning's loop itself;
- ``full``: what ``train.py`` builds: the project's trainer config (``trainer=cpu``), its callbacks
  (checkpointing, sample sheets, throughput) and the CSV logger, reading crops of the built-in photos
  through the real DataModule (uint8 arrays, random crops and flips, one worker).

Framework rates are the `Throughput` callback's ``train/images_per_sec`` (from the end of the first
batch to the end of the last); validation is off, so epoch-end work (checkpoint files) is not timed.
Goals: bare >= 0.95x and full >= 0.9x the plain loop.

Configs, in the plain loop, each group interleaved against its first config: the study's CNN
variants (model1/2/3) in its three colour spaces, and the GAN losses (pix2pix's vanilla GAN, WGAN-GP,
and cwgan's residual U-Net with WGAN-GP).
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.families import FAMILIES, ROOT, build, build_from, random_batch, train_config
from benchmarks.loops import fit_rate, lightning_rate, plain_step
from benchmarks.sections import Section, Summary, verdict
from benchmarks.timing import SMOKE, Measurement, interleave, rate, say, seconds, table
from colorization.instantiate import instantiate, instantiate_all
from colorization.jobs.train import build_trainer
from colorization.modules.base import ColorizerModule

BATCH = {64: 8, 128: 4, 224: 2}
"""Images per batch at each crop size: about the same number of pixels per step (a quarter of it for the
networks that work at full resolution with many channels, `LARGE`)."""
LARGE = ("cwgan", "eccv16", "siggraph17")
TIMED_S = 0.5
"""Seconds of timed training per round and variant: the batches per fit are sized from one plain step so that
fast configs time tens of batches (two would leave the timer's and scheduler's noise larger than the margin)."""
MIN_STEPS, MAX_STEPS = 2, 24
"""Timed batches per round and variant (plus one warm-up batch in each framework fit); 24 batches of 8 fit in one
epoch of the built-in photos' 228 training images."""
SIZES = (64, 128, 224)
DEFAULT_SIZES = {"cnn": (64, 224), "pix2pix": (64,), "cwgan": (64,), "eccv16": (64,), "siggraph17": (64,)}
"""Sizes measured unless ``BENCH_TRAIN_FULL=1``: on a 2-core CPU a step of the larger networks at 128-224 px
takes seconds, where a per-batch overhead of milliseconds cannot show, and would take most of `make bench`'s
10 minutes; the smallest size is where the framework's share is largest."""
GOALS = {"bare": 0.95, "full": 0.9}


@dataclass(frozen=True)
class ConfigGroup:
    """Configs compared with each other in the plain loop, against the first: name -> train.py overrides."""

    label: str
    description: str
    configs: dict[str, list[str]]
    batch: int
    size: int
    steps: int
    """Batches per timed call."""


CONFIG_GROUPS = (
    ConfigGroup(
        "CNN variants",
        "the study's CNN variants (model1: stride 1, 12 filters, the default `model=cnn`; model2: stride 2; "
        "model3: 32 filters) in its colour spaces",
        {
            f"{model} / {space}": [f"model={model}", f"colorspace={space}"]
            for model in ("model1", "model2", "model3")
            for space in ("lab", "rgb", "hls")
        },
        batch=8,
        size=96,
        steps=3,
    ),
    ConfigGroup(
        "GAN losses",
        "the GAN losses",
        {
            "pix2pix (vanilla GAN)": ["model=pix2pix"],
            "pix2pix, WGAN-GP": ["model=pix2pix", "model/gan_loss=wgangp"],
            "cwgan (residual U-Net, WGAN-GP)": ["model=cwgan"],
        },
        batch=2,
        size=64,
        steps=5,  # WGAN-GP's generator steps once every 5 critic steps: 5 batches count both in proportion
    ),
)


def full(model: ColorizerModule, overrides: list[str]) -> float:
    """One `fit` of `model` as ``train.py`` sets it up (config, DataModule, callbacks, loggers)."""
    cfg = train_config(overrides)
    datamodule = instantiate(cfg.data)
    trainer = build_trainer(
        cfg.trainer, callbacks=instantiate_all(cfg.callbacks), logger=instantiate_all(cfg.logger) or False
    )
    return fit_rate(trainer, model, datamodule=datamodule)


def batch_size(family: str, size: int) -> int:
    return max(1, BATCH[size] // 4) if family in LARGE else BATCH[size]


def timed_steps(model: ColorizerModule, batch: int, size: int) -> int:
    """Batches that take about `TIMED_S` in a plain loop (one step of a copy of `model` measured)."""
    step = plain_step(copy.deepcopy(model))
    sample = random_batch(batch, size)
    step(sample)  # first-call allocations
    step_s = seconds(lambda: step(sample))
    return int(min(MAX_STEPS, max(MIN_STEPS, round(TIMED_S / max(step_s, 1e-6)))))


def framework_variants(family: str, size: int, output_dir: Path) -> tuple[dict, int]:
    """The plain / bare / full calls for `family` at `size`, and the batches each times."""
    batch = batch_size(family, size)
    model = build(family)
    steps = timed_steps(model, batch, size)
    overrides = [
        *FAMILIES[family],
        "trainer=cpu",
        "logger=csv",
        "trainer.max_epochs=1",
        f"++trainer.limit_train_batches={steps + 1}",
        "++trainer.limit_val_batches=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"data.crop_size={size}",
        f"data.batch_size={batch}",
        # one loader worker, as any real run has: with none, loading would be timed inside the step
        "data.num_workers=1",
        f"paths.root_dir={ROOT}",  # the built-in photos are written once under data/ and reused
        f"paths.output_dir={output_dir}",
    ]
    models = {name: copy.deepcopy(model) for name in ("plain", "bare", "full")}
    batches = [random_batch(batch, size) for _ in range(steps + 1)]
    step = plain_step(models["plain"])
    return {
        "plain": rate(lambda: [step(b) for b in batches[:steps]], batch * steps),
        "bare": lambda: lightning_rate(models["bare"], batches),
        "full": lambda: full(models["full"], overrides),
    }, steps


def framework() -> tuple[list[list[str]], dict[str, dict[str, float]]]:
    """Table rows, and each variant's median ratio per ``family px`` (for the summary)."""
    rows, medians = [], {"bare": {}, "full": {}}
    every_size = os.environ.get("BENCH_TRAIN_FULL") == "1" and not SMOKE
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            for size in SIZES if every_size else DEFAULT_SIZES[family][: 1 if SMOKE else None]:
                calls, steps = framework_variants(family, size, Path(tmp) / f"{family}-{size}")
                # a fit warms up in its own first batch, which `Throughput` leaves out
                measured = interleave(calls, f"{family} {size} px", warmup=0, budget_s=10, max_rounds=8)
                for variant in medians:
                    medians[variant][f"{family} {size} px"] = measured.ratios[variant].median
                rows.append(
                    [
                        family,
                        str(size),
                        str(batch_size(family, size)),
                        str(steps),
                        measured.rates["plain"].cell("{:.1f}"),
                        measured.ratios["bare"].cell(suffix="x"),
                        measured.ratios["full"].cell(suffix="x"),
                        str(len(measured.rates["plain"].values)),
                    ]
                )
                say(f"{family} {size} px: bare {rows[-1][5]}, full {rows[-1][6]} of the plain loop")
    return rows, medians


def compare(group: ConfigGroup) -> Measurement:
    """The plain-loop rates of the group's configs, interleaved, ratios to the first."""
    calls = {}
    for name, overrides in group.configs.items():
        step = plain_step(build_from(overrides))
        batches = [random_batch(group.batch, group.size) for _ in range(group.steps)]
        calls[name] = rate(lambda step=step, batches=batches: [step(b) for b in batches], group.batch * group.steps)
    return interleave(calls, group.label, budget_s=10, max_rounds=10)


def shortfalls(medians: dict[str, dict[str, float]]) -> list[str]:
    """``bare cnn 64 px 0.92x`` for every median below its goal."""
    return [
        f"{variant} {case} {ratio:.2f}x"
        for variant, by_case in medians.items()
        for case, ratio in by_case.items()
        if ratio < GOALS[variant]
    ]


def span(values: dict[str, float]) -> str:
    return f"{min(values.values()):.2f}-{max(values.values()):.2f}x"


def run() -> Section:
    rows, medians = framework()
    groups = [(group, compare(group)) for group in CONFIG_GROUPS]
    missed = shortfalls(medians)
    body = [
        "Each family's default config with random weights, as many timed batches per round and variant as take "
        f"about {TIMED_S} s in the plain loop (batch sizes keep the pixels per step about equal). `bare`: "
        "Lightning's loop alone on in-memory batches; `full`: the project's trainer, callbacks, CSV logger and "
        "DataModule (built-in photos, one loader worker). Sizes: 64 and 224 px for cnn, 64 px for the others "
        "(`BENCH_TRAIN_FULL=1`: every family at 64, 128 and 224). Median (min-max) over interleaved rounds, "
        "ratios paired per round.\n",
        table(
            ["family", "px", "batch", "timed batches", "plain img/s", "bare vs plain", "full vs plain", "rounds"], rows
        ),
    ]
    for group, measured in groups:
        baseline = measured.names[0]
        body += [
            f"Configs compared in the plain loop: {group.description}, batch {group.batch} at {group.size} px.\n",
            table(
                ["config", "img/s", f"vs {baseline}"],
                [[n, measured.rates[n].cell("{:.1f}"), measured.ratios[n].cell(suffix="x")] for n in measured.names],
            ),
        ]
    (_, cnn), (_, gan) = groups
    fastest = max(cnn.names, key=lambda n: cnn.ratios[n].median)
    slowest_gan = min(gan.names, key=lambda n: gan.ratios[n].median)
    figure = f"bare {span(medians['bare'])}, full {span(medians['full'])} the plain loop"
    conclusion = (
        f"Lightning's own loop runs at {span(medians['bare'])} and the whole `train.py` pipeline at "
        f"{span(medians['full'])} the speed of a plain PyTorch loop "
        + (f"(below the goals: {', '.join(missed)})" if missed else "(both goals met everywhere)")
        + f"; of the configs, {fastest} trains fastest ({cnn.ratios[fastest].median:.2f}x {cnn.names[0]}) and "
        f"{slowest_gan} costs most among the GANs ({gan.ratios[slowest_gan].median:.2f}x {gan.names[0]})."
    )
    return Section(
        title="Training step: Lightning and `train.py` vs a plain PyTorch loop",
        body="\n".join(body),
        conclusion=conclusion,
        summary=Summary(
            "Training step vs a plain PyTorch loop (CPU)",
            figure,
            "bare >= 0.95x, full >= 0.9x",
            verdict(not missed) + (f" ({', '.join(missed)})" if missed else ""),
        ),
    )
