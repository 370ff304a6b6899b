"""A photo user's install: a wheel built from the repository, installed with only the core (no extra) into a
fresh virtual environment, colorizes and starts the web page's command without the repository and
without the training stack.

pip must find the pinned torch (``requirements.lock``, the CPU build) the way ``make install`` does:
this machine's and CI's pip configuration point it at a folder of wheels (``find-links``); elsewhere it
downloads torch's build from the package index.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorization.modules.build import build_module
from tests.helpers.configs import REPO
from tests.helpers.entry_points import error_lines
from tests.helpers.weights import CNN_CONFIG, save_checkpoint

EXTRAS_ONLY = {
    "lightning",
    "torchmetrics",
    "scikit-image",
    "scipy",
    "wandb",
    "tensorboard",
    "rich",
    "hydra-optuna-sweeper",
    "starlette",
    "uvicorn",
    "av",
    "opencv-python-headless",
    "onnx",
    "onnxruntime",
}
"""Distributions that only extras bring: none of them may come with the core."""


def run(command: list[str | Path], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """`command` in `cwd`, with nothing of this environment on Python's path."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def tracked_copy(destination: Path) -> Path:
    """The repository's files as a fresh clone has them (plus new files not ignored), without build outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            (destination / name).write_bytes(source.read_bytes())
    return destination


@pytest.mark.slow
def test_a_wheel_with_only_the_core_colorizes_without_the_repository(tmp_path: Path):
    source = tracked_copy(tmp_path / "source")
    built = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp_path, source], tmp_path
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("bw_colorization-*.whl")

    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", venv], tmp_path).returncode == 0
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    installed = run([python, "-m", "pip", "install", "--quiet", "-c", REPO / "requirements.lock", wheel], tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = run([python, "-m", "pip", "list", "--format=freeze"], tmp_path).stdout
    names = {line.split("==")[0].lower().replace("_", "-") for line in listed.splitlines()}
    assert {"torch", "hydra-core", "kornia", "pillow", "numpy", "tqdm"} <= names
    assert not names & EXTRAS_ONLY, f"the core brought {sorted(names & EXTRAS_ONLY)}"

    work = tmp_path / "work"  # neither the repository nor the source copy
    work.mkdir()
    model = save_checkpoint(build_module(CNN_CONFIG, "lab"), work / "cnn.ckpt")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 44), np.uint8)).save(work / "photo.jpg")
    colorized = run([bin_dir / "colorize", "photo.jpg", "--model", model, "--out", "out", "--quiet"], work)
    assert colorized.returncode == 0, colorized.stderr[-3000:]
    with Image.open(work / "out" / "photo.png") as image:
        assert image.size == (44, 30) and image.mode == "RGB"

    page = run([bin_dir / "colorize-demo", "--help"], work)
    assert page.returncode == 0 and "usage: colorize-demo" in page.stdout, page.stderr[-3000:]
    where = run([python, "-c", "import colorization; print(colorization.__file__)"], work).stdout
    assert Path(where.strip()).is_relative_to(venv), "the wheel's package, not the repository's"

    # what needs an extra says which one, in one line
    onnx = run([python, "-m", "colorization.export", "--model", model, "--out", "cnn.onnx"], work)
    assert onnx.returncode == 2 and "Traceback" not in onnx.stderr, onnx.stderr[-3000:]
    assert "pip install 'bw-colorization[onnx]'" in error_lines(onnx)[0]
