"""Evaluation throughput: `evaluate.py`'s job vs the bare model on the same images.

For each model (random weights, saved as a training checkpoint), interleaved:

- ``bare``: `colorize_full` over the test split's batches already in memory (the model alone);
- ``score``: `colorization.jobs.scoring.score`, the evaluation loop: reading batches, the model, every
  metric of the table for the gray / model / ground-truth rows;
- ``score warm``: the same loop given the reference rows (gray, ground truth) as a warm cache gives them;
- ``evaluate cold`` / ``evaluate warm``: the whole job behind ``evaluate.py``
  (`colorization.jobs.evaluate.evaluate`: loading the checkpoint and the data, `score`, then
  results.md/.csv/.json and comparison.png), with an empty cache of reference rows
  (`colorization.jobs.reference_rows`: every call scores them and writes the entry) and with the entry
  already written (a second evaluation of the same split).

Rates are the split's images over the wall time. Goal: ``evaluate warm`` >= 0.8x ``bare``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from benchmarks.families import ROOT, build, train_config
from benchmarks.sections import Section, Summary, verdict
from benchmarks.timing import interleave, rate, table
from colorization.data.batches import to_lab_batch
from colorization.files.downloads import CACHE_ENV
from colorization.inference.runtime import prepare_for_inference
from colorization.inference.sources import load_sources
from colorization.instantiate import instantiate
from colorization.jobs.evaluate import evaluate
from colorization.jobs.scoring import GRAY, GROUND_TRUTH, score, spread_positions

MODELS = tuple(os.environ.get("BENCH_EVAL_MODELS", "pix2pix").split(","))
"""pix2pix by default; ``BENCH_EVAL_MODELS=cnn,pix2pix`` adds the study CNN, the fastest model, where the
metrics' own cost shows most."""
CROP = 128
MAX_ROUNDS = 8
CPU = torch.device("cpu")
GOAL = 0.8


def save_checkpoint(family: str, path: Path) -> Path:
    """A randomly initialised `family` saved the way training saves it (state dict + `on_save_checkpoint`)."""
    model = build(family)
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


def variants(checkpoint: Path, output_root: Path) -> tuple[dict, int]:
    runs = itertools.count()
    overrides = [
        f"checkpoints=[{checkpoint}]",
        f"paths.root_dir={ROOT}",  # the built-in photos, written once under data/
        f"crop_size={CROP}",
        "device=cpu",
        "logger=none",
        "num_threads=1",
    ]
    cfg = train_config([*overrides, f"paths.output_dir={output_root / 'setup'}"], name="evaluate")
    (source,) = load_sources([str(checkpoint)], CPU, reserved=(GRAY, GROUND_TRUTH))
    # the layout evaluate.py gives its models (channels-last by default), so that bare and job run the same network
    prepare_for_inference(source.model, channels_last=bool(cfg.get("channels_last")), compile=bool(cfg.get("compile")))
    loader = instantiate(cfg.data).eval_dataloader(cfg.split, CROP, pin_memory=False)
    batches = [to_lab_batch(batch)["l"] for batch in loader]
    images = sum(len(l) for l in batches)
    keep = spread_positions(images, int(cfg.comparison_images))

    # composed ahead, one per call (each job needs a fresh output directory): the job is `evaluate(cfg)`
    configs = iter(
        [
            train_config([*overrides, f"paths.output_dir={output_root / str(next(runs))}"], name="evaluate")
            for _ in range(2 * MAX_ROUNDS + 2)
        ]
    )
    warm_cache = output_root / "warm-cache"

    def whole_job(cache: Path) -> None:
        with using_cache(cache), contextlib.redirect_stdout(io.StringIO()):  # its results table: keep to the figures
            evaluate(next(configs))

    whole_job(warm_cache)  # writes the reference rows' entry the warm calls find
    references = {
        name: score([source], loader, CPU, cfg.split, keep=keep).values[name] for name in (GRAY, GROUND_TRUTH)
    }
    return {
        "bare": rate(lambda: [source.model.colorize_full(l) for l in batches], images),
        "score": rate(lambda: score([source], loader, CPU, cfg.split, keep=keep), images),
        "score warm": rate(lambda: score([source], loader, CPU, cfg.split, keep=keep, references=references), images),
        "evaluate cold": rate(lambda: whole_job(Path(tempfile.mkdtemp(dir=output_root))), images),
        "evaluate warm": rate(lambda: whole_job(warm_cache), images),
    }, images


@contextlib.contextmanager
def using_cache(folder: Path) -> Iterator[None]:
    """The user's cache folder (`colorization.files.downloads.cache_dir`) is `folder` for the block."""
    saved = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            del os.environ[CACHE_ENV]
        else:
            os.environ[CACHE_ENV] = saved


def run() -> Section:
    rows, job_ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in MODELS:
            checkpoint = save_checkpoint(family, Path(tmp) / f"{family}.ckpt")
            calls, images = variants(checkpoint, Path(tmp) / family)
            measured = interleave(calls, f"evaluate {family}", budget_s=150, max_rounds=MAX_ROUNDS)
            job_ratios[family] = {name: measured.ratios[name].median for name in calls if name != "bare"}
            rows.append(
                [
                    family,
                    str(images),
                    measured.rates["bare"].cell("{:.1f}"),
                    *(measured.ratios[name].cell(suffix="x") for name in calls if name != "bare"),
                    str(len(measured.rates["bare"].values)),
                ]
            )
    figure = ", ".join(
        f"{family} {ratios['evaluate warm']:.2f}x (scoring loop {ratios['score warm']:.2f}x), cache warm"
        for family, ratios in job_ratios.items()
    )
    # an empty cache scores the reference rows as every evaluation did before the cache
    before = ", ".join(
        f"{family} {ratios['evaluate cold']:.2f}x (scoring loop {ratios['score']:.2f}x), reference rows scored"
        for family, ratios in job_ratios.items()
    )
    met = all(ratios["evaluate warm"] >= GOAL for ratios in job_ratios.values())
    header = ["model", "images", "bare img/s", "score", "score warm", "evaluate cold", "evaluate warm", "rounds"]
    return Section(
        title="Evaluation: `evaluate.py` vs the bare model",
        body=(
            f"The built-in photos' test split, centre crops of {CROP} px, fp32, random weights saved as a training "
            "checkpoint, both sides in `evaluate.py`'s layout (channels-last). `score`: the evaluation loop (data, "
            "model, every metric of the gray / model / ground-truth rows); `score warm`: the loop given the "
            "reference rows; `evaluate`: the whole job (loading, scoring, results files and comparison sheet), "
            "`cold` with an empty cache of reference rows, `warm` with the split's entry written by an earlier "
            "evaluation. Rates relative to `bare`, median (min-max) over interleaved rounds, ratios paired per "
            "round.\n\n" + table(header, rows)
        ),
        conclusion=(
            f"`evaluate.py` runs at {figure} the bare model's rate, "
            + ("meeting" if met else "short of")
            + f" the {GOAL}x goal for a repeated evaluation; a first evaluation of a split also scores the gray and "
            "ground-truth rows, later ones read them from the cache."
        ),
        summary=Summary("`evaluate.py` vs the bare model (CPU)", figure, f">= {GOAL}x", verdict(met), before=before),
    )
