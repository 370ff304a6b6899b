"""Start-up a person feels: from pressing Enter to an answer, each command a fresh process.

- ``colorize PHOTO --model FILE``: one 1024x768 gray JPEG colorized with an ECCV16 release file
  (random weights in the official layout) until the PNG is written: Python, torch, the file's
  loading and one photo through the network, the colour conversion and the encoder;
- ``colorize --help``, ``python train.py --help`` and ``python evaluate.py --help``;
- ``python train.py --help`` the way Hydra itself answers it (an override of ``hydra.help`` leaves the
  command to Hydra, which lists every config group before printing the same text): what
  `colorization.jobs.tasks.answer_help` saves.

The processes choose their threads as a person's would (every core: ``BENCH_THREADS`` sets only the
benchmark process's own), interleaved in rounds. Goals: ``colorize`` <= 5 s, ``train.py --help`` <= 3 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image
from skimage import data as skdata

from benchmarks.families import build_colorizer
from benchmarks.sections import ROOT, Section, Summary, verdict
from benchmarks.timing import Stats, interleave, rate, table

WIDTH, HEIGHT = 1024, 768
COLORIZE_GOAL_S, HELP_GOAL_S = 5.0, 3.0
COLORIZE = "colorize PHOTO --model ECCV16_FILE"
TRAIN_HELP = "python train.py --help"
HYDRA_HELP = "python train.py --help, answered by Hydra"


def write_inputs(folder: Path) -> tuple[Path, Path]:
    """A 1024x768 gray JPEG and an ECCV16 weight file in the release's layout (random weights)."""
    photo = folder / "photo.jpg"
    Image.fromarray(skdata.astronaut()).convert("L").resize((WIDTH, HEIGHT), Image.BICUBIC).save(photo, quality=90)
    state = build_colorizer("eccv16").net.state_dict()
    weights = folder / "eccv16-random.pth"
    torch.save({key: value for key, value in state.items() if not key.endswith("num_batches_tracked")}, weights)
    return photo, weights


def commands(photo: Path, weights: Path, out: Path) -> dict[str, list[str]]:
    python = sys.executable
    colorize = [python, "-m", "colorization.colorize"]
    return {
        COLORIZE: [*colorize, str(photo), "--model", str(weights), "--out", str(out), "--overwrite", "--quiet"],
        "colorize --help": [*colorize, "--help"],
        TRAIN_HELP: [python, "train.py", "--help"],
        HYDRA_HELP: [python, "train.py", "--help", "hydra.help.app_name=train.py"],
        "python evaluate.py --help": [python, "evaluate.py", "--help"],
    }


def run_command(command: list[str], expected: Path | None = None) -> None:
    """Run `command` from the repository root; it must succeed (and write `expected`, when given)."""
    if expected is not None:
        expected.unlink(missing_ok=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or (expected is not None and not expected.is_file()):
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")


def run() -> Section:
    with tempfile.TemporaryDirectory() as tmp:
        photo, weights = write_inputs(Path(tmp))
        out = Path(tmp) / "out"
        written = out / "photo.png"
        variants = {
            name: rate(lambda c=command, e=(written if name == COLORIZE else None): run_command(c, e), 1)
            for name, command in commands(photo, weights, out).items()
        }
        measured = interleave(variants, "start-up", min_rounds=3, max_rounds=5, budget_s=60, warmup=1, unit="runs/s")
    seconds: dict[str, Stats] = {name: measured.rates[name].reciprocal() for name in measured.names}
    colorize_s, help_s, hydra_s = (seconds[name].median for name in (COLORIZE, TRAIN_HELP, HYDRA_HELP))
    rows = [[f"`{name}`", seconds[name].cell("{:.1f}")] for name in measured.names]
    met = colorize_s <= COLORIZE_GOAL_S and help_s <= HELP_GOAL_S
    figure = (
        f"`colorize` one {WIDTH}x{HEIGHT} photo with ECCV16 {colorize_s:.1f} s; `train.py --help` {help_s:.1f} s "
        f"({hydra_s:.1f} s answered by Hydra)"
    )
    return Section(
        title="Start-up: from the command to its answer",
        body=(
            f"Each command a fresh process from the repository root, interleaved over {len(seconds[COLORIZE].values)} "
            f"rounds after one untimed run; seconds, median (min-max). `{COLORIZE}`: a {WIDTH}x{HEIGHT} gray JPEG, "
            "an ECCV16 weight file in the release's layout (random weights), until the PNG is written.\n\n"
            + table(["command", "seconds"], rows)
        ),
        conclusion=(
            f"A photo user waits {colorize_s:.1f} s for the first colorized photo and `train.py --help` answers in "
            f"{help_s:.1f} s, {hydra_s / help_s:.1f}x sooner than Hydra's own help."
        ),
        summary=Summary(
            "Start-up: `colorize` one photo (ECCV16 file), `train.py --help` (CPU)",
            figure,
            f"colorize <= {COLORIZE_GOAL_S:.0f} s; train.py --help <= {HELP_GOAL_S:.0f} s",
            verdict(met),
            before=f"`train.py --help` {hydra_s:.1f} s (answered by Hydra, which lists every config group first)",
        ),
    )
