"""The one writer: one temporary-name scheme, directories built aside, clean-up of dead writers' remains only."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from colorization.errors import DataError
from colorization.files.atomic import (
    RESUMABLE_TAG,
    TEMP_MARK,
    atomic_directory,
    atomic_write,
    atomic_write_json,
    remove_partial_files,
    resumable_directory,
    temp_path,
)
from colorization.jobs.run_dirs import check_writable
from tests.helpers.configs import REPO

PACKAGE = REPO / "colorization"
THE_WRITER = PACKAGE / "files" / "atomic.py"


# ---- only one module renames files --------------------------------------------------------------------


def renames(source: str) -> list[int]:
    """Lines of `source` that rename or move a file: ``os.replace/rename/renames``, ``shutil.move``, any
    ``.rename(...)``, a ``.replace(x)`` with one argument (``Path.replace``; ``str.replace`` takes two),
    and importing those functions by name."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        named = isinstance(node, ast.ImportFrom) and node.module in ("os", "shutil")
        if named and any(alias.name in ("replace", "rename", "renames", "move") for alias in node.names):
            lines.append(node.lineno)
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        name = node.func.attr
        if (
            (owner == "os" and name in ("replace", "rename", "renames"))
            or (owner == "shutil" and name == "move")
            or name in ("rename", "renames")
            or (name == "replace" and len(node.args) == 1 and not node.keywords)
        ):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("os.replace(a, b)", True),
        ("os.rename(a, b)", True),
        ("Path(tmp).replace(path)", True),
        ("tmp.rename(root)", True),
        ("shutil.move(a, b)", True),
        ("from os import replace", True),
        ("text.replace('/', '-')", False),
        ("stamp.replace(year=2000)", False),
    ],
)
def test_the_rename_finder_finds_renames_and_not_string_replacements(source: str, found: bool):
    assert bool(renames(source)) == found


def test_only_the_atomic_module_renames_files():
    offenders = {
        f"{path.relative_to(REPO)}:{line}"
        for path in PACKAGE.rglob("*.py")
        if path != THE_WRITER
        for line in renames(path.read_text())
    }
    assert not offenders, f"write through colorization.files.atomic instead of renaming here: {sorted(offenders)}"
    assert renames(THE_WRITER.read_text()), "the finder sees the writer's own renames"


# ---- files ------------------------------------------------------------------------------------------


def test_a_temporary_is_hidden_beside_its_target_and_named_after_it_and_the_writer(tmp_path: Path):
    assert temp_path(tmp_path / "a.png") == tmp_path / f".a.png{TEMP_MARK}{os.getpid()}"
    assert temp_path(tmp_path / "dst", RESUMABLE_TAG) == tmp_path / f".dst{TEMP_MARK}{RESUMABLE_TAG}"


def test_a_failed_write_check_keeps_nothing_and_the_old_file(tmp_path: Path):
    target = tmp_path / "weights.pth"
    target.write_bytes(b"old")

    def write_then_refuse(temp: Path) -> None:
        temp.write_bytes(b"new but wrong")
        raise DataError("sha256 does not match")

    with pytest.raises(DataError):
        atomic_write(target, write_then_refuse)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["weights.pth"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def fail(temp: Path) -> None:
        temp.write_text("new, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]


def test_metrics_files_are_strict_json(tmp_path):
    path = atomic_write_json(
        tmp_path / "metrics.json", {"val/cie76": float("nan"), "test/psnr": float("inf"), "a": 1.5}
    )
    assert json.loads(path.read_text()) == {"val/cie76": None, "test/psnr": None, "a": 1.5}


# ---- directories ------------------------------------------------------------------------------------


def test_a_directory_appears_whole_or_not_at_all(tmp_path: Path):
    target = tmp_path / "data" / "sample"
    with atomic_directory(target) as building:
        assert building == temp_path(target) and not target.exists()
        (building / "l").mkdir()
        (building / "l" / "gray.npy").write_bytes(b"L")
    assert (target / "l" / "gray.npy").read_bytes() == b"L" and os.listdir(target.parent) == ["sample"]

    failed = tmp_path / "data" / "failed"
    with pytest.raises(RuntimeError), atomic_directory(failed) as building:
        (building / "half.npy").write_bytes(b"half")
        raise RuntimeError("killed midway")
    assert sorted(os.listdir(failed.parent)) == ["sample"]


def test_a_directory_is_never_renamed_onto_an_existing_one(tmp_path: Path):
    target = tmp_path / "sample"
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    with pytest.raises(FileExistsError), atomic_directory(target) as building:
        (building / "theirs.txt").write_text("theirs")
    assert os.listdir(target) == ["mine.txt"] and os.listdir(tmp_path) == ["sample"]


def test_a_resumable_directory_outlives_a_failure_and_is_continued(tmp_path: Path):
    target = tmp_path / "packed"
    with pytest.raises(KeyboardInterrupt), resumable_directory(target) as partial:
        (partial / "progress.txt").write_text("4")
        raise KeyboardInterrupt
    assert not target.exists() and remove_partial_files(tmp_path) == [], "not a leftover: the next run continues it"
    with resumable_directory(target) as partial:
        assert (partial / "progress.txt").read_text() == "4"
        (partial / "progress.txt").write_text("10")
    assert (target / "progress.txt").read_text() == "10" and os.listdir(tmp_path) == ["packed"]


def test_a_resumable_directory_has_one_writer_at_a_time(tmp_path: Path):
    target = tmp_path / "packed"
    with resumable_directory(target) as partial:
        (partial / "progress.txt").write_text("4")
        with pytest.raises(DataError, match="another process is writing it now"), resumable_directory(target):
            pass
        assert (partial / "progress.txt").read_text() == "4", "the second writer touched nothing"


# ---- clean-up at start-up ---------------------------------------------------------------------------


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_clean_up_removes_what_dead_writers_left_and_nothing_else(tmp_path: Path):
    dead = dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (tmp_path / "sub").mkdir()
        leftovers = [tmp_path / f".a.png{TEMP_MARK}{dead}", tmp_path / f".sample{TEMP_MARK}{dead}"]
        leftovers[0].write_bytes(b"half")
        leftovers[1].mkdir()
        (leftovers[1] / "l.npy").write_bytes(b"half")
        below = tmp_path / "sub" / f".b.png{TEMP_MARK}{dead}"
        below.write_bytes(b"half")
        kept = [
            tmp_path / f".c.png{TEMP_MARK}{sleeper.pid}",  # a live writer's (another run into the same folder)
            tmp_path / f".d.png{TEMP_MARK}{os.getpid()}",  # this process's own
            tmp_path / f".packed{TEMP_MARK}{RESUMABLE_TAG}",  # a pack to continue
            tmp_path / f"e.png{TEMP_MARK}{dead}",  # not hidden: not a temporary of ours
            tmp_path / ".hidden",
            tmp_path / "photo.png",
        ]
        for path in kept:
            path.write_bytes(b"keep")
        assert sorted(remove_partial_files(tmp_path)) == sorted(leftovers)
        assert below.exists(), "not recursive unless asked"
        assert remove_partial_files(tmp_path, recursive=True) == [below]
        assert all(path.exists() for path in kept) and not any(path.exists() for path in leftovers)
    finally:
        sleeper.kill()
        sleeper.wait()


WRITER = """
import sys, time
from pathlib import Path
from colorization.files.atomic import atomic_write
target, go = Path(sys.argv[1]), Path(sys.argv[2])
def write(temp):
    temp.write_bytes(b"first half ")
    while not go.exists():  # the test kills this process here, or lets it finish
        time.sleep(0.01)
    with temp.open("ab") as file:
        file.write(b"second half")
atomic_write(target, write)
"""


def start_writer(target: Path, go: Path) -> subprocess.Popen:
    """A process writing `target` through the one writer, stopped halfway until `go` exists."""
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(target), str(go)], cwd=REPO)
    temp = temp_path(target, str(process.pid))
    deadline = time.monotonic() + 60
    while not temp.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert temp.exists(), "the writer started"
    return process


def test_a_second_run_keeps_a_live_writers_temporary_and_removes_a_killed_ones(tmp_path: Path):
    go = tmp_path / "go"
    live = start_writer(tmp_path / "out" / "live.png", go)
    killed = start_writer(tmp_path / "out" / "killed.png", tmp_path / "never")
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    removed = remove_partial_files(tmp_path / "out")  # what a second run does when it starts
    assert removed == [temp_path(tmp_path / "out" / "killed.png", str(killed.pid))]
    go.touch()
    assert live.wait(timeout=60) == 0
    assert (tmp_path / "out" / "live.png").read_bytes() == b"first half second half"
    assert os.listdir(tmp_path / "out") == ["live.png"]


def test_an_atomic_write_killed_midway_leaves_no_file_and_the_next_start_removes_its_remains(tmp_path):
    target = tmp_path / "checkpoints" / "best_epoch000.ckpt"
    # a child process writes half a file and is killed (SIGKILL) before it can finish the save
    script = textwrap.dedent(
        f"""
        import os, signal
        from colorization.files.atomic import atomic_write
        def half(temp):
            temp.write_bytes(b"x" * 1_000_000)
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(target)!r}, half)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert not target.exists()
    (orphan,) = target.parent.iterdir()
    assert TEMP_MARK in orphan.name
    check_writable(target.parent)  # what a training run does at start-up
    assert list(target.parent.iterdir()) == []
