"""Every way a run can be refused or stopped, run as a user runs it (a subprocess of the entry point).

Each case must end with its exit code (2 bad input, 3 diverged training), exactly one ``error:``
line naming the key, file or value, no traceback, and no file that existed before changed: every
file of the case's world (data, earlier runs, the files a payload would touch) is hashed before
and after. Security cases also check that the payload's side effect did not happen.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.errors import DataError
from colorization.files.weights import read_state_dict
from colorization.inference.direct import DirectColorizer
from colorization.inference.loading import load_colorizer
from colorization.jobs.train import train
from tests.helpers.configs import TINY_SAMPLE, compose_config, tiny_overrides
from tests.helpers.datasets import write_kaggle_layout
from tests.helpers.entry_points import error_lines, file_hashes, run_script


class Payload:
    """Pickles into a call of ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@dataclass
class World:
    """A case's directory: data, an earlier finished run, and files a payload must not touch."""

    root: Path
    sample: Path

    @property
    def kaggle(self) -> Path:
        return self.root / "kaggle"

    @property
    def old_run(self) -> Path:
        return self.root / "old_run"

    @property
    def marker(self) -> Path:
        return self.root / "payload_ran"

    @property
    def victim(self) -> Path:
        return self.root / "victim.txt"

    def evil_pickle(self, name: str = "evil.ckpt") -> Path:
        path = self.root / name
        torch.save({"state_dict": {}, "colorization": Payload(self.marker)}, path)
        return path

    def evil_config(self) -> Path:
        """A checkpoint whose stored model config asks to open (and truncate) `victim`."""
        stored = torch.load(self.old_run / "checkpoints" / "last.ckpt", weights_only=True)
        stored["colorization"]["model"]["net"] = {"_target_": "builtins.open", "file": str(self.victim), "mode": "w"}
        path = self.root / "evil_config.ckpt"
        torch.save(stored, path)
        return path


def sample_args(world: World) -> list[str]:
    return [f"paths.data_dir={world.sample.parent}", *(f"{key}={value}" for key, value in TINY_SAMPLE.items())]


def kaggle_args(world: World) -> list[str]:
    return ["data=kaggle", f"data.root={world.kaggle}", "data.crop_size=16", "data.batch_size=4"]


@dataclass
class Case:
    args: Callable[[World], list[str]]
    message: str
    """Must appear in the one ``error:`` line."""
    prepare: Callable[[World], None] = lambda world: None
    script: str = "train.py"
    code: int = 2
    new_run_dir: bool = True
    """Run into a fresh ``hydra.run.dir`` (False: the arguments name the directory)."""
    after: Callable[[World], None] = field(default=lambda world: None)


def no_payload(world: World) -> None:
    assert not world.marker.exists(), "the pickle payload ran"


def unlink(*parts: str) -> Callable[[World], None]:
    return lambda world: world.kaggle.joinpath(*parts).unlink()


def save_array(parts: tuple[str, ...], array: np.ndarray) -> Callable[[World], None]:
    return lambda world: np.save(world.kaggle.joinpath(*parts), array)


L_FILE, AB_DIR = ("l", "gray_scale.npy"), ("ab", "ab")

CASES: dict[str, Case] = {
    # --- bad data (Kaggle layout) ---------------------------------------------------------------
    "data root missing": Case(
        lambda w: [*kaggle_args(w), f"data.root={w.root / 'nowhere'}"], "data directory not found"
    ),
    "data root unset": Case(lambda w: [*kaggle_args(w), "data.root=null"], "data.root is not set"),
    "L file missing": Case(kaggle_args, "gray_scale.npy: file not found", unlink(*L_FILE)),
    "ab files missing": Case(
        kaggle_args,
        "no ab1.npy, ab2.npy",
        lambda w: [p.unlink() for p in w.kaggle.joinpath(*AB_DIR).glob("*.npy")],
    ),
    "gap in ab numbering": Case(kaggle_args, "without gaps", unlink(*AB_DIR, "ab2.npy")),
    "wrong L dtype": Case(
        kaggle_args,
        "gray_scale.npy: expected uint8 (N, H, W), got float32",
        save_array(L_FILE, np.zeros((15, 24, 24), np.float32)),
    ),
    "wrong ab shape": Case(
        kaggle_args,
        "ab2.npy: expected uint8 (n, 24, 24, 2)",
        save_array((*AB_DIR, "ab2.npy"), np.zeros((5, 24, 24, 3), np.uint8)),
    ),
    "L/ab count mismatch": Case(
        kaggle_args, "holds 14 images but the ab files hold 15", save_array(L_FILE, np.zeros((14, 24, 24), np.uint8))
    ),
    "not an npy file": Case(
        kaggle_args, "gray_scale.npy: not a readable .npy array", lambda w: w.kaggle.joinpath(*L_FILE).write_text("no")
    ),
    "crop larger than images": Case(lambda w: [*kaggle_args(w), "data.crop_size=32"], "data.crop_size=32 does not fit"),
    "empty data set": Case(
        kaggle_args,
        "the arrays hold no images",
        lambda w: (shutil.rmtree(w.kaggle), write_kaggle_layout(w.kaggle, [0])),
    ),
    # --- settings Hydra or torch would take with a traceback or silently ----------------------------
    "unknown colour space": Case(lambda w: ["colorspace=xyz"], "colorspace='xyz' is unknown; expected one of"),
    "unknown model": Case(lambda w: ["model=foo"], "model='foo' is unknown; expected one of ['cnn'"),
    "unknown model setting": Case(lambda w: ["+model.unknown_key=3"], "has no setting 'unknown_key'"),
    "max_epochs -1": Case(lambda w: ["trainer.max_epochs=-1"], "trainer.max_epochs=-1 is out of range"),
    "lr zero": Case(lambda w: ["model.optimizer.lr=0"], "model.optimizer.lr=0"),
    "lr nan": Case(lambda w: ["model.optimizer.lr=nan"], "model.optimizer.lr=nan must be a positive finite number"),
    "lr inf": Case(lambda w: ["model.optimizer.lr=inf"], "model.optimizer.lr=inf must be a positive finite number"),
    "no validation images": Case(lambda w: ["data.val_fraction=0"], "data.val_fraction=0 leaves no validation images"),
    "test without a checkpoint": Case(lambda w: ["train=false"], "train=false tests a trained model: set ckpt_path"),
    "unwritable output dir": Case(
        lambda w: [f"hydra.run.dir={w.victim / 'run'}"], "is not a writable directory", new_run_dir=False
    ),
    # --- run directories and resuming -----------------------------------------------------------------
    "fresh run into a used dir": Case(
        lambda w: [f"hydra.run.dir={w.old_run}"], "already holds files", new_run_dir=False
    ),
    "evaluate into a used dir": Case(
        lambda w: [f"hydra.run.dir={w.old_run}"], "already holds files", script="evaluate.py", new_run_dir=False
    ),
    "missing ckpt_path": Case(lambda w: [f"ckpt_path={w.root / 'gone.ckpt'}"], "gone.ckpt does not exist"),
    "resume a dir without last.ckpt": Case(
        lambda w: [f"resume={w.root / 'kaggle'}"], "no checkpoints/last.ckpt there", new_run_dir=False
    ),
    "resume in another colour space": Case(
        lambda w: [f"resume={w.old_run}", "colorspace=hls"],
        "colorspace: 'lab' in the checkpoint, 'hls' now",
        new_run_dir=False,
    ),
    "resume as another family": Case(
        lambda w: [f"resume={w.old_run}", "model=pix2pix"],
        "model._target_: 'colorization.modules.RegressionColorizer'",
        new_run_dir=False,
    ),
    "resume with another stride": Case(
        lambda w: [f"resume={w.old_run}", "++model.net.stride=2"],
        "model.net.stride: not set (the code's default) in the checkpoint, 2 now",
        new_run_dir=False,
    ),
    "test a checkpoint as another model": Case(
        lambda w: ["train=false", f"ckpt_path={w.old_run / 'checkpoints' / 'last.ckpt'}", "model=model2"],
        "model.net.stride: not set (the code's default) in the checkpoint, 2 now",
    ),
    # --- untrusted files --------------------------------------------------------------------------------
    "evaluate a pickle payload": Case(
        lambda w: [f"checkpoints=[{w.evil_pickle()}]"],
        "evil.ckpt: refused to load",
        script="evaluate.py",
        after=no_payload,
    ),
    "evaluate a fake release": Case(
        lambda w: [f"checkpoints=[{w.evil_pickle('colorization_release_v2.pth')}]"],
        "colorization_release_v2.pth: refused to load",
        script="evaluate.py",
        after=no_payload,
    ),
    "evaluate a config payload": Case(
        lambda w: [f"checkpoints=[{w.evil_config()}]"],
        "sets model.net._target_='builtins.open'",
        script="evaluate.py",
    ),
    "resume from a pickle payload": Case(
        lambda w: [f"ckpt_path={w.evil_pickle()}"], "evil.ckpt: refused to load", after=no_payload
    ),
    "release weights with a pickle payload": Case(
        lambda w: ["model=eccv16", f"++model.weights={w.evil_pickle('weights.pth')}"],
        "weights.pth: refused to load",
        after=no_payload,
    ),
    # --- training that diverges -------------------------------------------------------------------------
    "non-finite loss": Case(lambda w: ["model.optimizer.lr=1e30"], "train/loss is nan at step", code=3),
}


@pytest.fixture(scope="module")
def finished_run(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny CNN run (1 epoch), trained once and copied into every case's world."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(compose_config("train", [*tiny_overrides(sample_root, run_dir), "++trainer.limit_train_batches=2"]))
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_a_refused_or_stopped_run_says_why_in_one_line_and_changes_nothing(name, sample_root, finished_run, tmp_path):
    case = CASES[name]
    world = World(tmp_path / "world", sample_root)
    write_kaggle_layout(world.kaggle, [6, 5, 4])
    shutil.copytree(finished_run, world.old_run)
    world.victim.write_text("must survive")
    case.prepare(world)
    args = case.args(world)  # may write payload files: part of the world before the run
    before = file_hashes(world.root)

    common = [f"paths.root_dir={world.root}", "logger=csv"]
    if case.script == "train.py":
        common += [
            "trainer=cpu",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=2",
            "trainer.enable_progress_bar=false",
            *([] if "data=kaggle" in args else sample_args(world)),
        ]
    else:
        common += [f"paths.data_dir={world.sample.parent}", *(f"{k}={v}" for k, v in TINY_SAMPLE.items())]
    run_dir = [f"hydra.run.dir={tmp_path / 'new_run'}"] if case.new_run_dir else []
    result = run_script(case.script, [*common, *run_dir, *args], cwd=tmp_path)

    assert result.returncode == case.code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr[-3000:]
    assert case.message in lines[0], lines[0]
    after = file_hashes(world.root)
    changed = [str(path) for path, digest in before.items() if after.get(path) != digest]
    assert changed == [], f"{name} changed or removed {changed}"
    case.after(world)


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25


# --- the same refusals through the Python API -----------------------------------------------------------


def test_load_colorizer_and_release_weights_never_unpickle(tmp_path: Path):
    marker = tmp_path / "payload_ran"
    for name in ("evil.ckpt", "colorization_release_v2.pth"):
        path = tmp_path / name
        torch.save({"colorization": Payload(marker)}, path)
        with pytest.raises(DataError, match=rf"{name}: refused to load: .*\(io.open\)"):
            load_colorizer(path)
        with pytest.raises(DataError, match=rf"{name}: refused to load"):
            read_state_dict(path)
    plain = tmp_path / "plain.pth"
    with plain.open("wb") as file:
        pickle.dump(Payload(marker), file)
    with pytest.raises(DataError, match="plain.pth: (refused to load|not a readable PyTorch file)"):
        load_colorizer(plain)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("builtins.open", "builtins.open"),
        ("os.system", "os.system"),
        ("colorization.files.atomic.atomic_write_text", "colorization.files.atomic.atomic_write_text"),
        ("torch.save", "torch.save"),
        ("subprocess.Popen", "subprocess.Popen"),
        ("not_imported_module.Network", "not_imported_module.Network"),
    ],
)
@pytest.mark.parametrize("written", ["now", "before checkpoints described their colorizer"])
def test_load_colorizer_refuses_stored_targets_outside_the_package(target, shown, written, finished_run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("must survive")
    stored = torch.load(finished_run / "checkpoints" / "last.ckpt", weights_only=True)
    net = {"_target_": target, "file": str(victim), "mode": "w"}
    if written == "now":
        stored["colorization"]["colorizer"]["config"]["net"] = net
        entry = "colorizer"
    else:  # the colorizer then comes from the training config
        stored["colorization"]["colorizer"] = None
        stored["colorization"]["model"]["net"] = net
        entry = "model"
    path = tmp_path / "evil.ckpt"
    torch.save(stored, path)
    with pytest.raises(DataError, match=rf"evil.ckpt: refused: its stored config sets {entry}.net._target_='{shown}'"):
        load_colorizer(path)
    assert victim.read_text() == "must survive"
    # the untampered checkpoint still loads
    assert isinstance(load_colorizer(finished_run / "checkpoints" / "last.ckpt"), DirectColorizer)


# --- the same untrusted files given to colorize --model ------------------------------------------------


def ddcolor_shaped_payload(world: World) -> Path:
    """A file laid out like a DDColor release ({"params": network state dict}) that also carries a payload."""
    from colorization.inference.ddcolor import QUERY_KEY, STEM_KEY, WIDTH_OF_SIZE

    params = {STEM_KEY: torch.zeros(WIDTH_OF_SIZE["tiny"], 3, 4, 4), QUERY_KEY: torch.zeros(100, 256)}
    path = world.root / "pytorch_model.pt"
    torch.save({"params": {**params, "extra": Payload(world.marker)}}, path)
    return path


COLORIZE_CASES: dict[str, tuple[Callable[[World], Path], str]] = {
    "pickle payload": (lambda w: w.evil_pickle(), "evil.ckpt: refused to load"),
    "config payload": (
        lambda w: w.evil_config(),
        "evil_config.ckpt: refused: its stored config sets model.net._target_",
    ),
    "DDColor-shaped payload": (ddcolor_shaped_payload, "pytorch_model.pt: refused to load"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COLORIZE_CASES))
def test_colorize_refuses_an_untrusted_model_file_in_one_line(name, finished_run, tmp_path):
    make_file, message = COLORIZE_CASES[name]
    world = World(tmp_path / "world", tmp_path)
    shutil.copytree(finished_run, world.old_run)
    world.victim.write_text("must survive")
    photo = world.root / "photo.png"
    Image.fromarray(np.full((24, 32), 128, np.uint8)).save(photo)
    model = make_file(world)
    before = file_hashes(world.root)

    out = world.root / "colorized"
    result = subprocess.run(
        [sys.executable, "-m", "colorization.colorize", str(photo), "--model", str(model), "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )

    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and message in lines[0], result.stderr[-3000:]
    assert not world.marker.exists(), "the pickle payload ran"
    assert world.victim.read_text() == "must survive"
    assert file_hashes(world.root) == before  # nothing written, nothing changed
