"""The package's layers: no import cycle, every import points down, generic code names no model family, and
the apps start without the heavy stack.

`LAYERS` is the order of docs/development.md's tree: a module may import its own layer's modules (no
cycle) and any layer below, never one above. Imports inside functions count too: a lazy import that
points up is still a dependency on the layer above.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorization.jobs.train import train
from tests.helpers.configs import REPO

PACKAGE = REPO / "colorization"
LAYERS = (
    ("colorization", "colorization.errors", "colorization.instantiate"),
    ("colorization.color",),
    ("colorization.files",),
    ("colorization.video",),
    ("colorization.networks",),
    ("colorization.metrics",),
    ("colorization.inference",),
    ("colorization.data",),
    ("colorization.modules",),
    ("colorization.jobs",),
    (
        "colorization.colorize",
        "colorization.demo",
        "colorization.export",
        "colorization.pack",
        "colorization.summarize",
    ),
)
"""Bottom to top: base (errors, config instantiation), colour, files and downloads, films, networks, metrics,
inference, data, training families, jobs, apps (the colorizing ones, then the data tools)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The package modules `path` imports anywhere in it (``from a import b`` counts ``a.b`` when that is a module)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        yield from (name for name in names if name in modules)


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: set(imports_of(path, modules)) - {name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    """The index in `LAYERS` of the longest prefix naming `module` (or its package)."""
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} belongs to no layer: add it to LAYERS (and to docs/development.md)"
    return max(matches)[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as the modules around it, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                return path[path.index(imported) :] + [imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_import_points_down_a_layer():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {imported} (layer {layer_of(imported)})"
        for module, imported_modules in import_graph().items()
        for imported in sorted(imported_modules)
        if layer_of(imported) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_generic_code_imports_no_model_family_and_jobs_do_not_import_each_other():
    graph = import_graph()
    shared = {"colorization.modules", *(f"colorization.modules.{name}" for name in ("base", "build", "losses"))}
    families = {module for module in graph if module.startswith("colorization.modules.") and module not in shared}
    for module, imported in graph.items():
        if not module.startswith("colorization.modules"):
            assert not imported & families, f"{module} imports a specific family"
    assert "colorization.jobs.train" not in graph["colorization.jobs.evaluate"]


def imported_at_startup(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `command` with ``PYTHONPROFILEIMPORTTIME=1``; its result and the top-level packages it imported."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1", "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    imported = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return result, imported


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["-m", "colorization.colorize", "--help"],
        ["-m", "colorization.demo", "--help"],
        ["-m", "colorization.pack", "--help"],
    ],
)
def test_the_apps_answer_help_without_importing_torch(command, tmp_path):
    result, imported = imported_at_startup([sys.executable, *command], tmp_path)
    assert result.returncode == 0 and "usage:" in result.stdout
    assert "colorization" in imported, "the profile lists what was imported"
    assert "torch" not in imported


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_the_jobs_answer_help_without_importing_torch(script, tmp_path):
    """Hydra parses the command line before the job (torch, Lightning) is imported: --help answers at once."""
    result, imported = imported_at_startup([sys.executable, str(REPO / script), "--help"], tmp_path)
    assert result.returncode == 0 and f"python {script}" in result.stdout
    assert "hydra" in imported
    assert not imported & {"torch", "lightning", "wandb"}


@pytest.mark.slow
def test_colorizing_from_a_checkpoint_or_a_release_file_imports_no_lightning(train_config, release_files, tmp_path):
    train(train_config("model=cnn", run_dir=tmp_path / "run"))
    photo = tmp_path / "gray.png"
    Image.fromarray(np.full((24, 32), 90, np.uint8)).save(photo)
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    for name, model in (("checkpoint", checkpoint), ("release", release_files["eccv16"])):
        command = [sys.executable, "-m", "colorization.colorize", str(photo), "--model", str(model)]
        result, imported = imported_at_startup([*command, "--out", str(tmp_path / name), "--quiet"], tmp_path)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (tmp_path / name / "gray.png").is_file()
        assert "torch" in imported and not imported & {"lightning", "pytorch_lightning", "torchmetrics", "wandb"}


def test_the_development_page_draws_every_module():
    """docs/development.md's layout tree has a line for every module of the package, under its package."""
    text = (REPO / "docs" / "development.md").read_text()
    tree = text.split("```text", 1)[1].split("```", 1)[0]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if path.name == "__main__.py":
            continue
        shown = f"{relative.parent.name}/" if path.name == "__init__.py" else path.name  # a package: its folder
        if shown not in tree:
            missing.append(str(relative))
    assert not missing, f"docs/development.md's tree lacks {missing}"
