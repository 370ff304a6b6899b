"""Training step of every family: the framework vs a plain PyTorch loop, at 64, 128 and 224 px.

Three ways to run the same network and loss, interleaved round by round:

- ``plain``: `benchmarks.loops.plain_step` on float batches in memory (no Trainer, no loader);
- ``bare``: a Lightning Trainer with nothing configured (no logger, checkpoint or progress bar)
  fitting the same in-memory batches: the cost of Lightning's loop itself;
- ``full``: what ``train.py`` builds: the project's trainer config (``trainer=cpu``), its callbacks
  (checkpointing, sample sheets, throughput) and the CSV logger, reading crops of the built-in photos
  through the real DataModule (uint8 arrays, random crops and flips, one worker).

Framework rates are the `Throughput` callback's ``train/images_per_sec`` (from the end of the first
batch to the end of the last); validation is off, so epoch-end work (checkpoint files) is not timed.
Targets: bare >= 0.95x and full >= 0.9x the plain loop.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from benchmarks.families import FAMILIES, ROOT, random_batch, train_config
from benchmarks.loops import bare_trainer, plain_step
from benchmarks.timing import SMOKE, interleave, rate, say, seconds, table
from colorization.instantiate import instantiate, instantiate_all
from colorization.jobs.callbacks import Throughput
from colorization.jobs.train import build_trainer
from colorization.modules.base import ColorizerModule
from colorization.modules.build import build_module

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
DEFAULT_SIZES = {"cnn": SIZES, "pix2pix": (64, 128), "cwgan": (64,), "eccv16": (64,), "siggraph17": (64,)}
"""Sizes measured unless ``BENCH_TRAIN_FULL=1``: on a 2-core CPU a step of the larger networks at 128-224 px
takes seconds, where a per-batch overhead of milliseconds cannot show, and would take most of `make bench`'s
10 minutes; the smallest size is where the framework's share is largest."""


def fit_rate(trainer: L.Trainer, model: ColorizerModule, **fit_kwargs) -> float:
    """Training images/s of one `fit`, read from the trainer's `Throughput` callback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few batches, no validation: Lightning says so at length
        trainer.fit(model, **fit_kwargs)
    return float(trainer.callback_metrics["train/images_per_sec"])


def bare(model: ColorizerModule, batches: list[dict]) -> float:
    trainer = bare_trainer([Throughput(warmup_batches=1)])
    return fit_rate(trainer, model, train_dataloaders=DataLoader(batches, batch_size=None))


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


def variants(family: str, size: int, output_dir: Path) -> tuple[dict, int]:
    batch = batch_size(family, size)
    cfg = train_config([*FAMILIES[family], f"paths.root_dir={ROOT}", f"paths.output_dir={output_dir}"])
    model = build_module(cfg.model, cfg.colorspace.name)
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
        "bare": lambda: bare(models["bare"], batches),
        "full": lambda: full(models["full"], overrides),
    }, steps


def run() -> str:
    rows = []
    every_size = os.environ.get("BENCH_TRAIN_FULL") == "1" and not SMOKE
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            for size in SIZES if every_size else DEFAULT_SIZES[family][: 1 if SMOKE else None]:
                calls, steps = variants(family, size, Path(tmp) / f"{family}-{size}")
                measured = interleave(
                    calls,
                    f"{family} {size} px",
                    warmup=0,  # a fit warms up in its own first batch, which `Throughput` leaves out
                    budget_s=10,
                    max_rounds=8,
                )
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
    return (
        "## Training step: framework vs plain PyTorch loop\n\n"
        "Each family's default config with random weights, batches of the size given (about the same "
        "pixels per step), as many timed batches per round and variant as take about "
        f"{TIMED_S} s in the plain loop; median (min-max) over interleaved "
        "rounds, ratios paired per round. `bare`: Lightning's loop alone on in-memory batches; `full`: "
        "the project's trainer, callbacks, CSV logger and DataModule (built-in photos, one loader worker). "
        "Sizes: 64/128/224 px for cnn, 64/128 for pix2pix, 64 for the others (`BENCH_TRAIN_FULL=1`: all at "
        "all three). Targets: bare >= 0.95x, full >= 0.9x.\n\n"
        + table(
            ["family", "px", "batch", "timed batches", "plain img/s", "bare vs plain", "full vs plain", "rounds"], rows
        )
    )
