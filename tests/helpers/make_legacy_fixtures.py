"""Make the legacy checkpoint fixtures: one real `train.py` run per model family, written by commit 21c9b5d.

Why: checkpoints store their model config with ``_target_``s of the package as it was when they were
written (``colorization.models.UNetGenerator``, ``colorization.losses.WGANGPLoss``, ...). After a
reorganisation of the package those checkpoints must still load, evaluate, colorize and resume; these
fixtures are such checkpoints, made with the code before the reorganisation.

What it makes, in OUT (default ``tests/fixtures/legacy/``):

- ``<family>/``: the run directory of ``python train.py ... hydra.run.dir=<family>`` (``trainer=cpu``,
  ``logger=csv``, one epoch on a tiny copy of the built-in photos), for the families in `FAMILIES`:
  ``.hydra/`` (config, hydra, overrides), ``checkpoints/last.ckpt`` (full state: weights, optimizers,
  schedulers, loops, callbacks with the random states), ``csv/`` (metrics.csv, hparams.yaml),
  ``metrics.json`` and ``train.log``. Left out: ``samples/`` (pictures) and ``checkpoints/best_epoch000.ckpt``
  (after one epoch it is a hard link to ``last.ckpt``, the same file). The runs are made in a temporary
  folder, so the absolute paths stored in them (``.hydra/*.yaml``, ``csv/hparams.yaml``, the checkpoint
  callback's ``dirpath``/``best_model_path``) name a folder that no longer exists.
- ``expected.pt``: plain tensors (``torch.load(..., weights_only=True)``): ``input_l``, the fixed input of
  `fixed_input_l`, and per family the output of ``load_colorizer(last.ckpt).colorize_full(input_l)`` (fp32,
  CPU, 1 thread); ``siggraph17_hints`` with the hint points ``siggraph17_hint_points`` (x, y, a, b) too.
- ``manifest.json``: per family the overrides the run was made with (grouped: what a resume must repeat),
  the checkpoint's ``colorization`` entry, ``metrics.json``, every ``_target_`` of the stored model config,
  the file sizes and what was shrunk; plus the data settings, versions and the commit.

Small networks: every network that a config can shrink is shrunk (pix2pix, CWGAN: ``ngf``/``ndf`` 4 and a
shallow U-Net; DDColor's discriminator ``nf=8``), so its checkpoint is a few hundred kB of real weights.
ECCV16 and SIGGRAPH17 (32-34 M parameters, the official fixed architecture) and DDColor-tiny (a ConvNeXt-T
encoder, 55 M) cannot be shrunk by config: their full checkpoints are 390-660 MB. For these three,
`shrink_checkpoint` rewrites ``last.ckpt`` after its one training step (one batch, `SHRUNK_TRAINER`):

- ``state_dict``: every floating-point tensor of at least 2 dimensions and more than `MAX_REAL_ELEMENTS`
  elements becomes a view, with stride 1 along every dimension, of its own first ``sum(size - 1) + 1``
  values (element [i, j, k, l] = value i + j + k + l). The views of one file share one small storage,
  and ``load_state_dict`` copies from them as from any tensor. Not a constant (a stride-0 view of one
  value): with constant weights every output channel of a layer is the same, and ECCV16's softmax over
  bins that differ by their bias alone gives one colour for the whole picture (measured: spatial std
  of ab 4e-7 with constants, 5e-3 with these views); `expected.pt` would then not see a wrong resize.
  Spectral-norm vectors (DDColor's ``*.weight_u``/``*.weight_v``) are recomputed for the rewritten
  ``*.weight_orig`` by power iteration, as ``colorization.models.ddcolor.spectral_norm`` settles them; with
  stale vectors the eval-mode normalisation divides by a meaningless sigma. Smaller tensors, 1-D tensors
  and integer buffers keep their trained values.
- ``optimizer_states``: every moment (``exp_avg``, ``exp_avg_sq``) of more than one element becomes a
  stride-0 view of its mean, stored as float64. float64, because ``torch.optim.Optimizer.load_state_dict``
  keeps a tensor of the parameter's dtype as it is (a float32 view stays a view and the first Adam update
  fails: "more than one element of the written-to tensor refers to a single memory location") while it
  copies one of another dtype into a new float32 tensor. Moments of any size: they change no output, and
  those of DDColor's parameters of at most 4096 elements alone were 1.2 MB. ``step`` counts stay as they are.

The shrunk files load with ``torch.load(weights_only=True)``, colorize and resume with this commit's code
(see ``tests/fixtures/legacy/README.md``). They are not trained models: their colours are meaningless.

Rerun with 21c9b5d's code (the script compares colorization/, conf/, train.py, evaluate.py, pyproject.toml
and requirements.lock with 21c9b5d and refuses other code unless ``--any-code``). Branch legacy-fixtures is
21c9b5d plus files under tests/helpers/ and tests/fixtures/ only, so either check it out::

    git worktree add --detach /tmp/old legacy-fixtures
    cd /tmp/old && make install && .venv/bin/python tests/helpers/make_legacy_fixtures.py OUT

or check out 21c9b5d itself and put this script into it (it finds the repository by its train.py)::

    git worktree add /tmp/old 21c9b5d && cd /tmp/old && make install
    git show legacy-fixtures:tests/helpers/make_legacy_fixtures.py > make_legacy_fixtures.py
    .venv/bin/python make_legacy_fixtures.py OUT

It takes about 2 minutes on 2 CPU cores and needs neither the network nor a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

REPO = next(p for p in Path(__file__).resolve().parents if (p / "train.py").is_file())
DEFAULT_OUT = REPO / "tests" / "fixtures" / "legacy"
LEGACY_COMMIT = "21c9b5d"
CODE_PATHS = ("colorization", "conf", "train.py", "evaluate.py", "pyproject.toml", "requirements.lock")
"""What must be 21c9b5d's for the fixtures to be legacy checkpoints."""

DATA_SETTINGS = {"image_size": 64, "train_crops_per_photo": 6, "test_crops_per_photo": 4, "photo_seed": 0}
"""The built-in photos at 64 px (`write_sample_dataset`): 36 training-pool and 8 test images. 64, not the
tests' 48, so that DDColor's 64-px crops fit; the other families train on 32-px crops of them."""
DATA_OVERRIDES = (
    "data.image_size=64",
    "data.train_crops_per_photo=6",
    "data.test_crops_per_photo=4",
    "data.val_fraction=0.2",
)
TRAINER_OVERRIDES = (
    "trainer=cpu",
    "trainer.max_epochs=1",
    "logger=csv",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
)
SHRUNK_TRAINER = ("+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1")
"""The big families train one batch (one step of each optimizer): their weights are rewritten anyway."""

MAX_REAL_ELEMENTS = 4096
"""State-dict tensors of at most this many elements keep their trained values in a shrunk checkpoint."""
POWER_ITERATIONS = 50
"""Power iterations that settle a spectral norm's u, v on a rewritten weight (the code uses 20 from random)."""
NUM_THREADS = 1
"""Threads for the expected outputs: a fixed reduction order, so a rerun reproduces them bit for bit."""

INPUT_HEIGHT, INPUT_WIDTH = 40, 56
SIGGRAPH17_HINT_POINTS = ((10.0, 8.0, 40.0, 60.0), (45.0, 30.0, -30.0, -20.0))
"""(x, y, a, b) in the pixels of `fixed_input_l`: an orange point at the top left, a teal one at the bottom right."""


@dataclass(frozen=True)
class Family:
    """One fixture run: the model overrides (what a resume must repeat exactly) and how it trains."""

    name: str
    model: tuple[str, ...]
    crop_size: int = 32
    batch_size: int = 8
    shrink: bool = False
    trainer: tuple[str, ...] = field(default=())

    def data_overrides(self) -> list[str]:
        return [*DATA_OVERRIDES, f"data.crop_size={self.crop_size}", f"data.batch_size={self.batch_size}"]

    def trainer_overrides(self) -> list[str]:
        return [*TRAINER_OVERRIDES, *(SHRUNK_TRAINER if self.shrink else ()), *self.trainer]


FAMILIES = (
    Family("cnn", ("model=cnn", "colorspace=lab")),
    Family("model2", ("model=model2", "colorspace=hls")),
    Family(
        "pix2pix",
        (
            "model=pix2pix",
            "colorspace=lab",
            "model.generator.num_downs=3",
            "++model.generator.ngf=4",
            "++model.discriminator.ndf=4",
        ),
    ),
    # batches of 4: 8 critic steps in the epoch, so the generator (every 5th critic step) steps once too
    Family(
        "cwgan",
        (
            "model=cwgan",
            "colorspace=lab",
            "++model.generator.num_downs=2",
            "++model.generator.ngf=4",
            "++model.discriminator.ndf=4",
        ),
        batch_size=4,
    ),
    Family("eccv16", ("model=eccv16", "colorspace=lab"), shrink=True),
    Family("siggraph17", ("model=siggraph17", "colorspace=lab"), shrink=True),
    Family(
        "ddcolor",
        ("model=ddcolor", "colorspace=lab", "++model.input_size=64", "++model.discriminator.nf=8"),
        crop_size=64,
        batch_size=4,
        shrink=True,
    ),
)
KEPT_FILES = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "checkpoints/last.ckpt",
              "csv/metrics.csv", "csv/hparams.yaml", "metrics.json", "train.log")  # fmt: skip
"""What a fixture run directory keeps of its train.py run (all of it but samples/ and best_*.ckpt)."""


def fixed_input_l() -> Tensor:
    """(1, 1, 40, 56) float32 L in [0, 100]: a ramp from 0 (top left) to 100 (bottom right), 3x steeper
    along x than along y; not square, so a height/width mix-up changes the output."""
    y = torch.arange(INPUT_HEIGHT, dtype=torch.float64)[:, None] / (INPUT_HEIGHT - 1)
    x = torch.arange(INPUT_WIDTH, dtype=torch.float64)[None, :] / (INPUT_WIDTH - 1)
    return (100.0 * (0.75 * x + 0.25 * y)).float().reshape(1, 1, INPUT_HEIGHT, INPUT_WIDTH)


def fixed_hints() -> Any:
    """`SIGGRAPH17_HINT_POINTS` as the `colorization.hints.Hints` of one image of `fixed_input_l`'s size."""
    from colorization.hints import Hints

    return Hints.from_points([SIGGRAPH17_HINT_POINTS], size=(INPUT_HEIGHT, INPUT_WIDTH))


def expected_outputs(out: Path, families: tuple[Family, ...] = FAMILIES) -> dict[str, Tensor]:
    """`fixed_input_l` and each family's ``colorize_full`` of it (fp32, CPU), as `expected.pt` holds them."""
    from colorization.checkpoints import load_colorizer

    torch.set_num_threads(NUM_THREADS)
    l = fixed_input_l()
    expected = {"input_l": l}
    for family in families:
        model = load_colorizer(out / family.name / "checkpoints" / "last.ckpt")
        expected[family.name] = model.colorize_full(l.clone(), precision="fp32").clone()
        if family.name == "siggraph17":
            expected["siggraph17_hint_points"] = torch.tensor(SIGGRAPH17_HINT_POINTS, dtype=torch.float32)
            expected["siggraph17_hints"] = model.colorize_full(l.clone(), precision="fp32", hints=fixed_hints()).clone()
    for name, value in expected.items():
        if not torch.isfinite(value).all():
            raise SystemExit(f"error: expected output {name!r} is not finite")
    return expected


# ---- shrinking -------------------------------------------------------------------------------------


def shrink_checkpoint(path: Path) -> dict[str, int]:
    """Rewrite the full checkpoint at `path` small (see the module docstring); returns counts for the manifest."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state_dict = checkpoint["state_dict"]
    shrunk = [
        key
        for key, value in state_dict.items()
        if value.is_floating_point() and value.dim() >= 2 and value.numel() > MAX_REAL_ELEMENTS
    ]
    bases = [state_dict[key].detach().flatten()[: diagonal_length(state_dict[key].shape)] for key in shrunk]
    storage, offset = torch.cat(bases).clone() if bases else torch.zeros(0), 0
    for key, base in zip(shrunk, bases, strict=True):
        shape = state_dict[key].shape
        state_dict[key] = storage.as_strided(shape, (1,) * len(shape), offset)
        offset += base.numel()
    settled = settle_spectral_norms(state_dict, shrunk)

    moments = [
        (state, name)
        for optimizer in checkpoint.get("optimizer_states", [])
        for state in optimizer["state"].values()
        for name, value in state.items()
        if name != "step" and isinstance(value, Tensor) and value.is_floating_point() and value.numel() > 1
    ]
    means = torch.tensor([float(state[name].double().mean()) for state, name in moments], dtype=torch.float64)
    for index, (state, name) in enumerate(moments):
        state[name] = means[index : index + 1].expand(state[name].shape)

    torch.save(checkpoint, path)
    torch.load(path, map_location="cpu", weights_only=True)  # what every reader of it does
    return {
        "state_dict_tensors_rewritten": len(shrunk),
        "state_dict_elements_rewritten": sum(state_dict[key].numel() for key in shrunk),
        "state_dict_values_stored_for_them": offset,
        "spectral_norms_resettled": settled,
        "optimizer_moments_replaced_by_their_mean": len(moments),
    }


def diagonal_length(shape: torch.Size) -> int:
    """Values a stride-1-everywhere view of `shape` reads: its largest index + 1."""
    return sum(size - 1 for size in shape) + 1


def settle_spectral_norms(state_dict: dict[str, Tensor], rewritten: list[str]) -> int:
    """Recompute ``<name>_u``/``<name>_v`` of every rewritten ``<name>_orig`` (`torch.nn.utils.spectral_norm`
    on dim 0, as every spectral norm of this package) by power iteration from the stored u."""
    count = 0
    for key in rewritten:
        if not key.endswith("_orig"):
            continue
        name = key.removesuffix("_orig")
        matrix, u = state_dict[key].flatten(1).clone(), state_dict[f"{name}_u"].clone()
        if u.shape != (matrix.shape[0],) or state_dict[f"{name}_v"].shape != (matrix.shape[1],):
            raise SystemExit(f"error: {key}: spectral norm vectors do not fit dim 0 of a {tuple(matrix.shape)} matrix")
        for _ in range(POWER_ITERATIONS):
            v = F.normalize(matrix.T @ u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
        state_dict[f"{name}_u"], state_dict[f"{name}_v"] = u, v
        count += 1
    return count


# ---- runs ------------------------------------------------------------------------------------------


def write_data(data_dir: Path) -> None:
    """The built-in photos at `DATA_SETTINGS` under ``data_dir/sample``, as ``data=sample`` reads them."""
    from colorization.data.sample import write_sample_dataset

    write_sample_dataset(
        data_dir / "sample",
        DATA_SETTINGS["image_size"],
        DATA_SETTINGS["train_crops_per_photo"],
        DATA_SETTINGS["test_crops_per_photo"],
        seed=DATA_SETTINGS["photo_seed"],
    )


def train_run(family: Family, work: Path, data_dir: Path) -> Path:
    """``python train.py`` for `family` in a subprocess; returns its run directory."""
    run_dir = work / "runs" / family.name
    args = [
        f"paths.root_dir={work}",
        f"paths.data_dir={data_dir}",
        *family.model,
        *family.data_overrides(),
        *family.trainer_overrides(),
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    print(f"{family.name}: python train.py {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=work, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-5000:])
        raise SystemExit(f"error: train.py for {family.name} exited {result.returncode}")
    return run_dir


def keep_run(run_dir: Path, target: Path) -> list[str]:
    """Copy `KEPT_FILES` of a run into `target`; returns what was left out."""
    checkpoints = run_dir / "checkpoints"
    for best in checkpoints.glob("best_*.ckpt"):
        if not os.path.samefile(best, checkpoints / "last.ckpt"):
            raise SystemExit(f"error: {best} is not last.ckpt (a one-epoch run links them); the fixture would lose it")
    kept = set(KEPT_FILES)
    files = (str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    left_out = sorted(name for name in files if name not in kept)
    for name in KEPT_FILES:
        source = run_dir / name
        if not source.is_file():
            raise SystemExit(f"error: {source} is missing; a train.py run leaves it")
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    return left_out


def stored_targets(node: Any, key: str = "model") -> list[str]:
    """Every ``<dotted key>._target_=<name>`` of a stored model config, depth first."""
    found = []
    if isinstance(node, dict):
        if "_target_" in node:
            found.append(f"{key}._target_={node['_target_']}")
        for name, value in node.items():
            found += stored_targets(value, f"{key}.{name}")
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            found += stored_targets(value, f"{key}[{index}]")
    return found


def describe(family: Family, target: Path, left_out: list[str], shrunk: dict[str, int] | None) -> dict[str, Any]:
    """The manifest entry of one fixture run."""
    checkpoint = torch.load(target / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    info = checkpoint["colorization"]
    return {
        "overrides": {
            "model": list(family.model),
            "data": family.data_overrides(),
            "trainer": family.trainer_overrides(),
            "paths": ["paths.root_dir=<temporary folder>", "paths.data_dir=<temporary folder>/data"],
        },
        "colorization": info,
        "targets": stored_targets(info["model"]),
        "epoch": checkpoint["epoch"],
        "global_step": checkpoint["global_step"],
        "lightning_version": checkpoint.get("pytorch-lightning_version"),
        "hyper_parameters": checkpoint.get("hyper_parameters"),
        "optimizers": len(checkpoint.get("optimizer_states", [])),
        "lr_schedulers": len(checkpoint.get("lr_schedulers", [])),
        "metrics": json.loads((target / "metrics.json").read_text()),
        "left_out": left_out,
        "shrunk": shrunk,
        "files": {name: (target / name).stat().st_size for name in KEPT_FILES},
    }


def check_legacy_code(any_code: bool) -> str:
    """The full hash of `LEGACY_COMMIT`; refuses (unless `any_code`) code that differs from it."""
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", LEGACY_COMMIT], capture_output=True, text=True)
    diff = subprocess.run([*git, "diff", "--quiet", LEGACY_COMMIT, "--", *CODE_PATHS], capture_output=True)
    if commit.returncode != 0 or diff.returncode not in (0, 1):
        message = f"cannot compare the code with {LEGACY_COMMIT} (no git history here)"
    elif diff.returncode == 1:
        message = f"{', '.join(CODE_PATHS)} differ from {LEGACY_COMMIT}: these would not be legacy checkpoints"
    else:
        return commit.stdout.strip()
    if not any_code:
        raise SystemExit(f"error: {message}; pass --any-code to make them anyway")
    print(f"warning: {message}", file=sys.stderr)
    return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--families", nargs="+", choices=[f.name for f in FAMILIES], help="only these (default all)")
    parser.add_argument("--any-code", action="store_true", help="make them even if the code is not 21c9b5d's")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary folder of the runs")
    args = parser.parse_args(argv)
    commit = check_legacy_code(args.any_code)
    families = tuple(f for f in FAMILIES if not args.families or f.name in args.families)
    out: Path = args.out.resolve()
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise SystemExit(f"error: {out} holds files but no manifest.json; choose an empty folder or a fixtures folder")

    work = Path(tempfile.mkdtemp(prefix="legacy-fixtures-"))
    data_dir = work / "data"
    write_data(data_dir)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    entries = manifest.get("families", {})
    try:
        for family in families:
            run_dir = train_run(family, work, data_dir)
            target = out / family.name
            shutil.rmtree(target, ignore_errors=True)
            left_out = keep_run(run_dir, target)
            shrunk = shrink_checkpoint(target / "checkpoints" / "last.ckpt") if family.shrink else None
            entries[family.name] = describe(family, target, left_out, shrunk)
            print(f"{family.name}: {entries[family.name]['files']['checkpoints/last.ckpt']:,} bytes", flush=True)
    finally:
        if args.keep_work:
            print(f"runs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    present = tuple(f for f in FAMILIES if f.name in entries)
    torch.save(expected_outputs(out, present), out / "expected.pt")
    manifest = {
        "commit": commit,
        "made_by": "tests/helpers/make_legacy_fixtures.py",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lightning": entries[present[0].name]["lightning_version"] if present else None,
        },
        "data": {**DATA_SETTINGS, "val_fraction": 0.2, "write_sample_dataset": "root=<data_dir>/sample"},
        "expected": {
            "file": "expected.pt",
            "input": "input_l = fixed_input_l(): (1, 1, 40, 56) float32, 100 * (0.75 x/55 + 0.25 y/39)",
            "call": "load_colorizer(<family>/checkpoints/last.ckpt).colorize_full(input_l), fp32, CPU, 1 thread",
            "siggraph17_hints": "also with hints=Hints.from_points([siggraph17_hint_points], size=(40, 56))",
        },
        "families": {name: entries[name] for name in [f.name for f in FAMILIES] if name in entries},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total:,} bytes)")


if __name__ == "__main__":
    main()
