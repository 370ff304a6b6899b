"""The summary that ends every `train.py` run: where the results are, and whether they are any good.

The model's CIE76 is shown beside the gray baseline (a = b = 0: the photo left as it is) on the
same images: both are metrics of the validation and test loops (``val/gray_cie76``, ``test/scored_images``, ...
from `colorization.metrics.image.baseline_metrics`), so the summary reads numbers the run already has,
over exactly the batches the loops scored (``limit_val_batches`` and ``limit_test_batches`` included),
and reads no data itself. A model that does not beat gray gets one honest sentence about what that
means and where real results come from.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L

from colorization.jobs.loggers import wandb_run_line
from colorization.jobs.run_dirs import display_path

SENTENCE_WIDTH = 100
"""Columns the honest sentence is wrapped to."""
BUILTIN_PHOTOS_ADVICE = (
    "That is expected here: a few epochs on six built-in photos show that the code works, not what a "
    "colorizer can do. Real results come from the Kaggle data on a GPU "
    "(python train.py data=kaggle data.root=DIR trainer=gpu) or from the official weights "
    "(colorize photo.jpg --model eccv16)."
)
OTHER_DATA_ADVICE = (
    "More epochs or more data may help; for a reference, colorize the same photos with the official "
    "weights (colorize photo.jpg --model eccv16)."
)


@dataclass(frozen=True)
class Score:
    """CIE76 of the model and of the gray baseline on the same images of one split."""

    model: float | None
    gray: float
    images: int
    which: str
    """Which weights the model's score belongs to, e.g. ``last epoch``, ``best checkpoint``."""


@dataclass(frozen=True)
class SavedCheckpoints:
    """The best and the last checkpoint a training run saved (None: none saved)."""

    best: Path | None = None
    best_epoch: int | None = None
    last: Path | None = None
    last_epoch: int | None = None

    @classmethod
    def of(cls, trainer: L.Trainer) -> SavedCheckpoints:
        """Those of `trainer`'s checkpoint callback, right after `fit` (the last epoch is the one just trained)."""
        callback = trainer.checkpoint_callback
        if callback is None:
            return cls()
        best = Path(callback.best_model_path) if callback.best_model_path else None
        last = Path(callback.last_model_path) if callback.last_model_path else None
        return cls(
            best=best,
            best_epoch=checkpoint_epoch(best) if best else None,
            last=last,
            last_epoch=trainer.current_epoch - 1 if last else None,
        )


@dataclass
class RunSummary:
    """What a person needs after a run; `format_summary` turns it into the lines printed."""

    run_dir: Path
    saved: SavedCheckpoints = field(default_factory=SavedCheckpoints)
    tested: Path | None = None
    """A checkpoint tested without training (``train=false ckpt_path=...``)."""
    sample_sheet: Path | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    builtin_photos: bool = False
    wandb: str | None = None


def checkpoint_epoch(path: str | Path) -> int | None:
    """The epoch in a checkpoint's file name (``best_epoch003.ckpt`` -> 3); None if it names none."""
    match = re.search(r"epoch[=_]?(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def summarize_run(
    trainer: L.Trainer,
    metrics: dict[str, float],
    run_dir: Path,
    saved: SavedCheckpoints,
    tested: str | None = None,
    builtin_photos: bool = False,
) -> RunSummary:
    """Collect the summary of a finished run from its trainer, checkpoints and final `metrics`.

    The scores are the loops' own: ``<split>/cie76``, ``<split>/gray_cie76`` and ``<split>/scored_images`` of
    `metrics`; a split the loops did not score (no ``<split>/cie76``) gets no line.
    """
    summary = RunSummary(run_dir=run_dir, saved=saved, builtin_photos=builtin_photos, wandb=wandb_run_line())
    if tested:
        summary.tested = Path(tested)
    for callback in trainer.callbacks:
        if getattr(callback, "last_path", None) is not None:
            summary.sample_sheet = callback.last_path
    for split, which in (("val", "last epoch"), ("test", "tested checkpoint" if tested else "best checkpoint")):
        value, gray, images = (metrics.get(f"{split}/{key}") for key in ("cie76", "gray_cie76", "scored_images"))
        if value is None or gray is None or images is None:
            continue
        if split == "test" and saved.best is None and not tested:
            which = "last weights"
        summary.scores[split] = Score(model=value, gray=gray, images=int(images), which=which)
    return summary


def verdict(summary: RunSummary) -> str | None:
    """One honest sentence when the model is not better than gray (test if scored, else val); else None."""
    split = "test" if "test" in summary.scores else "val" if "val" in summary.scores else None
    if split is None:
        return None
    score = summary.scores[split]
    if score.model is None or score.model < score.gray:
        return None
    name = "test" if split == "test" else "validation"
    sentence = (
        f"On the {name} images this model is worse than leaving the photos gray "
        f"(CIE76 {score.model:.2f} vs {score.gray:.2f}; lower is better): its colours are further from the "
        "truth than no colour at all."
    )
    return f"{sentence} {BUILTIN_PHOTOS_ADVICE if summary.builtin_photos else OTHER_DATA_ADVICE}"


def _epoch(epoch: int | None) -> str:
    return f" (epoch {epoch})" if epoch is not None else ""


def format_summary(summary: RunSummary, cwd: Path | None = None) -> str:
    """The summary block: a few aligned lines, paths relative to the run directory."""
    run = summary.run_dir
    lines = [f"Run directory: {display_path(run, cwd)}"]
    saved, files = summary.saved, []
    if saved.best is not None:
        files.append(f"best {display_path(saved.best, run)}{_epoch(saved.best_epoch)}")
    if saved.last is not None:
        files.append(f"last {display_path(saved.last, run)}{_epoch(saved.last_epoch)}")
    if files:
        lines.append(f"  checkpoints   {', '.join(files)}")
    if summary.tested is not None:
        lines.append(f"  tested        {summary.tested}")
    if summary.sample_sheet is not None:
        lines.append(
            f"  sample sheet  {display_path(summary.sample_sheet, run)} (gray input | prediction | ground truth)"
        )
    if summary.scores:
        lines.append("  CIE76 ΔE ↓    model    gray  images")
        for split, score in summary.scores.items():
            model = f"{score.model:7.2f}" if score.model is not None else "       "
            lines.append(f"    {split:<11} {model} {score.gray:7.2f} {score.images:7d}  ({score.which})")
    if summary.wandb:
        lines.append(f"  W&B           {summary.wandb}")
    sentence = verdict(summary)
    if sentence:
        lines += textwrap.wrap(sentence, width=SENTENCE_WIDTH, break_on_hyphens=False)
    return "\n".join(lines)
