"""Check the legacy fixtures with the code at hand: load, evaluate, colorize and resume each run.

For every family of ``manifest.json`` (or those named), on a copy of its run directory in a temporary folder:

(a) ``load_colorizer(last.ckpt).colorize_full(input_l)`` equals ``expected.pt`` (`--atol` 0: exactly; the
    same thread count as when they were made);
(b) ``python evaluate.py checkpoints=<last.ckpt> data=sample ...`` on the tiny photo set exits 0;
(c) ``colorize <a small png> --model <last.ckpt> --out <dir>`` exits 0 and writes the picture;
(d) ``python train.py resume=<copy> trainer.max_epochs=2 ...`` exits 0, and ``last.ckpt`` is then epoch 1
    with ``csv/metrics.csv`` holding epoch-1 rows;
(e) the same resume with another model (without the family's ``++model.*`` overrides, or with
    ``colorspace=rgb`` where it has none) is refused (exit 2) before anything is written.

Written for 21c9b5d's code (``make_legacy_fixtures.py`` made the fixtures with it); after the package's
reorganisation the same steps are what the new code must pass. Needs neither the network nor a GPU::

    .venv/bin/python tests/helpers/check_legacy_fixtures.py [FIXTURES] [--families cnn ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = next(p for p in Path(__file__).resolve().parents if (p / "train.py").is_file())
DEFAULT_FIXTURES = REPO / "tests" / "fixtures" / "legacy"
STEPS = ("load", "evaluate", "colorize", "resume", "refused")


def run(command: list[str], cwd: Path) -> tuple[int, str, float]:
    """`command` in `cwd` as a user runs it (W&B offline, 1 thread); exit code, output tail, seconds."""
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    return result.returncode, (result.stdout + result.stderr)[-2500:], time.perf_counter() - start


def shown(command: list[str]) -> str:
    return " ".join(Path(part).name if i == 0 else part for i, part in enumerate(command))


def check_load(run_dir: Path, name: str, expected: dict[str, torch.Tensor], atol: float) -> str:
    from colorization.checkpoints import load_colorizer

    from tests.helpers.make_legacy_fixtures import NUM_THREADS, fixed_hints, fixed_input_l

    torch.set_num_threads(NUM_THREADS)
    if not torch.equal(fixed_input_l(), expected["input_l"]):
        return "fixed_input_l() differs from expected.pt's input_l"
    model = load_colorizer(run_dir / "checkpoints" / "last.ckpt")
    outputs = {name: model.colorize_full(expected["input_l"].clone(), precision="fp32")}
    if name == "siggraph17":
        outputs["siggraph17_hints"] = model.colorize_full(expected["input_l"].clone(), hints=fixed_hints())
    for key, output in outputs.items():
        difference = (output - expected[key]).abs().max().item()
        if difference > atol:
            return f"{key}: max |difference| {difference:.3g} > {atol}"
    return ""


def write_photo(path: Path) -> None:
    """A 48 x 72 gray PNG cut from scikit-image's (held-out) chelsea."""
    import skimage.data
    from PIL import Image

    Image.fromarray(skimage.data.chelsea()).convert("L").resize((72, 48)).save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", nargs="?", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--families", nargs="+", help="only these (default: all of manifest.json)")
    parser.add_argument("--atol", type=float, default=0.0, help="tolerance of (a); 0: exact")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from colorization.data.sample import write_sample_dataset

    fixtures = args.fixtures.resolve()
    manifest = json.loads((fixtures / "manifest.json").read_text())
    expected = torch.load(fixtures / "expected.pt", weights_only=True)
    names = args.families or list(manifest["families"])
    work = Path(tempfile.mkdtemp(prefix="legacy-check-"))
    data = manifest["data"]
    data_dir = work / "data"
    write_sample_dataset(
        data_dir / "sample",
        data["image_size"],
        data["train_crops_per_photo"],
        data["test_crops_per_photo"],
        seed=data["photo_seed"],
    )
    photo = work / "photo.png"
    write_photo(photo)
    python, colorize = sys.executable, str(Path(sys.executable).with_name("colorize"))
    results: dict[str, dict[str, str]] = {}
    try:
        for name in names:
            entry = manifest["families"][name]
            run_dir = work / "runs" / name
            shutil.copytree(fixtures / name, run_dir)
            overrides = entry["overrides"]
            paths = [f"paths.root_dir={work}", f"paths.data_dir={data_dir}"]
            trainer = [o if o != "trainer.max_epochs=1" else "trainer.max_epochs=2" for o in overrides["trainer"]]
            commands = {
                "evaluate": [
                    python,
                    str(REPO / "evaluate.py"),
                    f"checkpoints={run_dir / 'checkpoints' / 'last.ckpt'}",
                    "data=sample",
                    *paths,
                    *overrides["data"],
                    "device=cpu",
                    f"hydra.run.dir={work / 'evaluate' / name}",
                ],
                "colorize": [
                    colorize,
                    str(photo),
                    "--model",
                    str(run_dir / "checkpoints" / "last.ckpt"),
                    "--out",
                    str(work / "colorized" / name),
                    "--device",
                    "cpu",
                    "--workers",
                    "0",
                    "--offline",
                    "--quiet",
                ],
                "resume": [
                    python,
                    str(REPO / "train.py"),
                    f"resume={run_dir}",
                    *paths,
                    *overrides["model"],
                    *overrides["data"],
                    *trainer,
                ],
            }
            commands["refused"] = changed_model(commands["resume"])
            results[name] = {}
            problem = check_load(run_dir, name, expected, args.atol)
            results[name]["load"] = "FAIL " + problem if problem else "ok"
            for step in ("evaluate", "colorize", "resume", "refused"):
                code, tail, seconds = run(commands[step], work)
                wanted = 2 if step == "refused" else 0
                problem = "" if code == wanted else f"exit {code}, expected {wanted}: {tail}"
                if not problem and step == "colorize" and not (work / "colorized" / name / "photo.png").is_file():
                    problem = "no colorized/photo.png"
                if not problem and step == "resume":
                    problem = resumed_problem(run_dir)
                if not problem and step == "refused" and "another model config" not in tail:
                    problem = f"refused for another reason: {tail}"
                results[name][step] = f"FAIL {problem}" if problem else f"ok ({seconds:.0f} s)"
                print(f"{name} {step}: {results[name][step]}\n  {shown(commands[step])}", flush=True)
            print(f"{name} load: {results[name]['load']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nfamily      " + "  ".join(f"{step:<10}" for step in STEPS))
    for name, steps in results.items():
        print(f"{name:<11} " + "  ".join(f"{steps.get(step, '-').split(' ')[0]:<10}" for step in STEPS))
    return int(any(value.startswith("FAIL") for steps in results.values() for value in steps.values()))


def changed_model(resume: list[str]) -> list[str]:
    """The resume command with another model: without its ``++model.*`` overrides, or if it has none,
    with ``colorspace=rgb`` (the fixtures are lab and hls)."""
    if any(o.startswith("++model.") for o in resume):
        return [o for o in resume if not o.startswith("++model.")]
    return [o if not o.startswith("colorspace=") else "colorspace=rgb" for o in resume]


def resumed_problem(run_dir: Path) -> str:
    """Why the resumed run did not train epoch 2 (index 1), or ''."""
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True, mmap=True)
    if checkpoint["epoch"] != 1:
        return f"last.ckpt is epoch {checkpoint['epoch']} after the resume, expected 1"
    with (run_dir / "csv" / "metrics.csv").open() as file:
        epochs = {int(row["epoch"]) for row in csv.DictReader(file)}
    return "" if 1 in epochs else f"csv/metrics.csv has epochs {sorted(epochs)}, no epoch 1"


if __name__ == "__main__":
    raise SystemExit(main())
