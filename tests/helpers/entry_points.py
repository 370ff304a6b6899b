"""Running the entry points as a user does: a subprocess, its exit code and its output."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.configs import REPO, TINY_SAMPLE


def run_script(
    script: str, args: list[str], cwd: Path, timeout: int = 300, env: dict[str, str] | None = None, **popen
) -> subprocess.CompletedProcess:
    """``python <script> <args>`` from the repository, in `cwd`, with W&B offline and one thread per process;
    `env` adds variables, `popen` goes to `subprocess.run` (e.g. ``preexec_fn=without_permission_override``)."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **popen,
    )


def cli_overrides(sample_root: Path | None, root: Path) -> list[str]:
    """train.py's command-line settings for a one-epoch CPU run on the tiny photo set (`sample_root`; None:
    leave the data alone), its logs under `root`."""
    data = []
    if sample_root is not None:
        data = [f"paths.data_dir={sample_root.parent}", *(f"{key}={value}" for key, value in TINY_SAMPLE.items())]
    return [
        f"paths.root_dir={root}",
        *data,
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
    ]


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The ``error:`` lines a run printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def file_hashes(root: Path) -> dict[Path, str]:
    """sha256 of every file under `root` (recursively), by path."""
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
"""The capabilities that let root write where file permissions say no (linux/capability.h)."""
PR_CAPBSET_DROP = 24


def without_permission_override() -> None:
    """A ``preexec_fn``: the child obeys file permissions even when run as root, so a test can make a
    folder read-only with ``chmod``. Root keeps every capability in its bounding set unless it drops them;
    an ``exec`` then gives it only what is left. Does nothing for a user who has no such capability."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
