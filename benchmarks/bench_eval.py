"""Evaluation throughput: `evaluate.py`'s job vs the bare model on the same images.

For each model (random weights, saved as a training checkpoint), interleaved:

- ``bare``: `colorize_full` over the test split's batches already in memory (the model alone);
- ``score``: `colorization.jobs.scoring.score`, the evaluation loop: reading batches, the model, every
  metric of the table for the gray / model / ground-truth rows;
- ``evaluate``: the whole job behind ``evaluate.py`` (`colorization.jobs.evaluate.evaluate`): loading the
  checkpoint and the data, `score`, then results.md/.csv/.json and comparison.png.

Rates are the split's images over the wall time. Goal: ``evaluate`` >= 0.7x ``bare``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import tempfile
from pathlib import Path

import torch

from benchmarks.families import ROOT, build, train_config
from benchmarks.sections import Section, Summary, verdict
from benchmarks.timing import interleave, rate, table
from colorization.data.batches import to_lab_batch
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
GOAL = 0.7


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
            for _ in range(MAX_ROUNDS + 1)
        ]
    )

    def whole_job() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # its results table: the stream keeps to the figures
            evaluate(next(configs))

    return {
        "bare": rate(lambda: [source.model.colorize_full(l) for l in batches], images),
        "score": rate(lambda: score([source], loader, CPU, cfg.split, keep=keep), images),
        "evaluate": rate(whole_job, images),
    }, images


def run() -> Section:
    rows, job_ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in MODELS:
            checkpoint = save_checkpoint(family, Path(tmp) / f"{family}.ckpt")
            calls, images = variants(checkpoint, Path(tmp) / family)
            measured = interleave(calls, f"evaluate {family}", budget_s=20, max_rounds=MAX_ROUNDS)
            job_ratios[family] = (measured.ratios["score"].median, measured.ratios["evaluate"].median)
            rows.append(
                [
                    family,
                    str(images),
                    measured.rates["bare"].cell("{:.1f}"),
                    measured.ratios["score"].cell(suffix="x"),
                    measured.ratios["evaluate"].cell(suffix="x"),
                    str(len(measured.rates["bare"].values)),
                ]
            )
    figure = ", ".join(f"{family} {job:.2f}x (scoring loop {loop:.2f}x)" for family, (loop, job) in job_ratios.items())
    met = all(job >= GOAL for _, job in job_ratios.values())
    return Section(
        title="Evaluation: `evaluate.py` vs the bare model",
        body=(
            f"The built-in photos' test split, centre crops of {CROP} px, fp32, random weights saved as a training "
            "checkpoint, both sides in `evaluate.py`'s layout (channels-last). `score`: the evaluation loop (data, "
            "model, every metric of the gray / model / ground-truth rows); `evaluate`: the whole job (loading, "
            "scoring, results files and comparison sheet). Median (min-max) over interleaved rounds, ratios paired "
            "per round.\n\n"
            + table(["model", "images", "bare img/s", "score vs bare", "evaluate vs bare", "rounds"], rows)
        ),
        conclusion=(
            f"`evaluate.py` runs at {figure} the bare model's rate, "
            + ("meeting" if met else "short of")
            + f" the {GOAL}x goal; what the scoring loop adds is reading the data and the metrics of three rows, "
            "what the job adds beyond it is loading the checkpoint and writing the results."
        ),
        summary=Summary("`evaluate.py` vs the bare model (CPU)", figure, f">= {GOAL}x", verdict(met)),
    )
