"""The README and docs/ as a reader uses them: every command and example in them works.

Every fenced block of README.md and docs/*.md is read. ``bash`` blocks are commands, one per line
(a trailing backslash continues it); in ``text`` blocks the lines that start with ``$ `` are. Each
command is checked for real:

- ``python train.py ...`` / ``python evaluate.py ...`` compose with Hydra's compose API, through
  Hydra's own argument parser; a multirun (``-m``, or a config that sets one) composes every job of
  its sweep.
- ``colorize``, ``python -m colorization.export|pack|summarize`` run in-process on tiny files the test
  makes, in document order per page, after the placeholders (``photo.jpg``, ``scans/``,
  ``logs/train/runs/<run>``, ``/path/to/photos``) were made or replaced by tiny real ones. Release
  names are served from a local HTTP server on 127.0.0.1 (random weights in the release's layout).
  Commands that need what this test cannot afford (a CUDA device when there is none; DDColor's
  networks, tens of seconds each on a CPU) are parsed by the command's real argument parser.
- ``colorize-demo`` is parsed on its page and served for real in a subprocess on a free port (slow).
- ``make``, ``pip install``, ``sbatch``, ``curl`` and ``pytest`` lines name a target, extra, script,
  release or test file that exists.

``python`` blocks run in order per page, in the same namespace, in a folder holding those tiny files;
official weight file names are replaced by files of the same layout holding random weights.
``json`` and ``csv`` blocks are hints files: they must parse, and the commands after them use them.
Links and backticked paths must point at something in the repository.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from PIL import Image

from colorization.jobs.tasks import check_overrides
from tests.helpers.clips import film_clip, write_film
from tests.helpers.configs import CONF_DIR, REPO, compose_config, tiny_overrides

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 300
LANGUAGES = {"bash", "python", "text", "json", "csv"}
OFFICIAL_FILES = {"colorization_release_v2-9b330a0b.pth": "eccv16", "siggraph17-df00044c.pth": "siggraph17"}
"""Official weight files the pages name, and the release whose random-weight stand-in replaces each."""
SERVED_RELEASES = ("eccv16", "siggraph17")
"""Release names served from 127.0.0.1; the other names (DDColor's) are only parsed."""
FILM_FRAMES = 6
"""Frames of the film the pages' film commands colorize (ECCV16 costs a fraction of a second per frame)."""
REEL_SECONDS = 13
"""Length of the film in ``reels/``: the pages colorize its seconds 10 to 12."""
RUN_NAME = "2026-01-01_00-00-00_000000_cnn-lab"
SWEEP_NAME = "2026-01-01_00-00-00_000000"
PLACEHOLDER = re.compile(r"<[\w-]+>")
HISTORY = re.compile(
    r"load average|development machine|this machine cannot|it printed|before this change|\bcommit [0-9a-f]{7,40}\b",
    re.IGNORECASE,
)
"""Phrases of a development log, which has no place in pages a user reads."""


# ---- reading the pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    """Line number of the opening fence."""
    language: str
    text: str


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str
    """The command as written, continuation lines joined; `argv` drops its comment."""

    @property
    def argv(self) -> list[str]:
        words = shlex.split(self.text, comments=True)
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):  # VAR=value before a command
            words.pop(0)
        return words

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    found, lines, k = [], page.read_text().splitlines(), 0
    while k < len(lines):
        opening = re.fullmatch(r"```(\S*)\s*", lines[k])
        if opening:
            end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("```"))
            found.append(Block(page, k + 1, opening.group(1), "\n".join(lines[k + 1 : end])))
            k = end
        k += 1
    return found


def commands(block: Block) -> list[Command]:
    if block.language not in ("bash", "text"):
        return []
    found: list[Command] = []
    pending, start = "", 0
    for offset, line in enumerate(block.text.splitlines(), start=block.line + 1):
        if block.language == "text":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not pending:
            start = offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text and not text.startswith("#"):
            found.append(Command(block.page, start, text))
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
ALL_COMMANDS = [command for block in ALL_BLOCKS for command in commands(block)]


def kind(command: Command) -> str:
    argv = command.argv
    if argv[:2] in (["python", "train.py"], ["python", "evaluate.py"]):
        return "hydra"
    if argv[0] in ("colorize", "colorize-demo") or argv[:2] == ["python", "-m"]:
        return "app"
    if argv[0] in ("make", "pip", "sbatch", "curl") or argv[1:3] == ["-m", "pytest"]:
        return "tool"
    return "unknown"


def hydra_commands() -> list[Command]:
    return [c for c in ALL_COMMANDS if kind(c) == "hydra"]


def tool_commands() -> list[Command]:
    return [c for c in ALL_COMMANDS if kind(c) == "tool"]


# ---- static checks --------------------------------------------------------------------------------


def test_the_readme_is_short_and_the_docs_have_a_page_per_question():
    assert len((REPO / "README.md").read_text().splitlines()) <= README_MAX_LINES
    assert len(PAGES) - 1 >= 5


def test_every_block_is_of_a_known_language_and_every_command_of_a_known_kind():
    assert {block.language for block in ALL_BLOCKS} <= LANGUAGES, "a block without a language cannot be checked"
    unknown = [command.id + " " + command.text for command in ALL_COMMANDS if kind(command) == "unknown"]
    assert not unknown, f"commands this test does not know how to check: {unknown}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    in_block = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_block = not in_block
        heading = re.match(r"#+ (.*)", line)
        if heading and not in_block:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def prose(page: Path) -> str:
    """The page without its fenced blocks."""
    return re.sub(r"^```.*?^```", "", page.read_text(), flags=re.DOTALL | re.MULTILINE)


REPO_TOP = {path.name for path in REPO.iterdir() if not path.name.startswith(".git")} - {"logs", "data"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_and_backticked_paths_point_into_the_repository(page: Path):
    text = prose(page)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists() or REPO not in path.parents:
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target} (no such heading)")
    for code in re.findall(r"`([^`\n]+)`", text):
        for word in code.split():
            word = word.strip(",;:()")
            if word.split("/")[0] not in REPO_TOP or ("/" not in word and "." not in word):
                continue
            if re.search(r"[<{]", word):  # conf/model/<name>.yaml: the folder before the placeholder
                word = re.split(r"[<{]", word)[0].rsplit("/", 1)[0]
            matches = list(REPO.glob(word)) if "*" in word else [REPO / word] if (REPO / word).exists() else []
            if not matches:
                broken.append(word)
    assert not broken, f"{page.name}: links or paths to nothing in the repository: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_development_history(page: Path):
    assert not HISTORY.findall(page.read_text()), f"{page.name} reads as a development log"


# ---- python train.py / evaluate.py ----------------------------------------------------------------

OVERRIDES = OverridesParser.create()


@functools.cache
def _compose(config_name: str, overrides: tuple[str, ...], hydra: bool):
    """Composed once per distinct command line: the pages repeat some (composing takes a fraction of a second)."""
    if not hydra:
        return compose_config(config_name, list(overrides))
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)


def compose_full(config_name: str, overrides: list[str]):
    return _compose(config_name, tuple(overrides), True)


def sweep_jobs(overrides: list[str], sweeper_params: dict) -> list[list[str]]:
    """The jobs of a multirun, as Hydra's basic sweeper makes them: the config's sweep, then the
    command line's (the command line wins on a shared key); an interval (Optuna) takes its start."""
    choices: dict[str, list[str]] = {}
    for line in [f"{key}={value}" for key, value in sweeper_params.items()] + overrides:
        override = OVERRIDES.parse_override(line)
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[override.key_or_group] = [line]
        elif override.value_type.name == "INTERVAL_SWEEP":
            choices[override.key_or_group] = [f"{key}={override.value().start}"]
        else:
            choices[override.key_or_group] = [f"{key}={value}" for value in override.sweep_string_iterator()]
    return [list(job) for job in itertools.product(*choices.values())]


def first_job(line: str) -> str:
    """A sweep override narrowed to its first value (what composing one config can take)."""
    override = OVERRIDES.parse_override(line)
    if not override.is_sweep_override():
        return line
    return f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"


@pytest.mark.parametrize("command", hydra_commands(), ids=lambda c: c.id)
def test_train_and_evaluate_commands_compose(command: Command):
    argv = command.argv
    config_name = Path(argv[1]).stem
    args = get_args_parser().parse_args([PLACEHOLDER.sub("x", word) for word in argv[2:]])
    assert not (args.help and args.cfg), "Hydra's flags, one at a time"
    if args.cfg:
        assert args.cfg in ("job", "hydra", "all")
    cfg = compose_full(config_name, [first_job(line) for line in args.overrides])
    if args.multirun or str(cfg.hydra.mode) == "RunMode.MULTIRUN":
        jobs = sweep_jobs(args.overrides, dict(cfg.hydra.sweeper.get("params") or {}))
        assert len(jobs) >= 2, f"{command.id}: a multirun of one job sweeps nothing"
        for job in jobs:
            _compose(config_name, tuple(job), False)


def test_the_documented_four_job_grid_has_four_jobs():
    (grid,) = [c for c in hydra_commands() if "++model.net.stride=1,2" in c.text]
    argv = grid.argv
    cfg = compose_full("train", [first_job(line) for line in argv[3:]])
    assert len(sweep_jobs(argv[3:], dict(cfg.hydra.sweeper.get("params") or {}))) == 4


# ---- make, pip, sbatch, curl, pytest --------------------------------------------------------------


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))


@pytest.mark.parametrize("command", tool_commands(), ids=lambda c: c.id)
def test_tool_commands_name_what_exists(command: Command):
    argv = command.argv
    if argv[0] == "make":
        targets = [word for word in argv[1:] if "=" not in word and not word.startswith("-")]
        assert targets and set(targets) <= make_targets(), f"no such make target: {targets}"
    elif argv[0] == "pip":
        import tomllib

        extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        (spec,) = [word for word in argv if word.startswith(".[")]
        assert set(spec[2:-1].split(",")) <= set(extras)
    elif argv[0] == "sbatch":
        (script,) = [word for word in argv[1:] if word.endswith(".sbatch")]
        assert (REPO / script).is_file()
        script_overrides = ["trainer=slurm", "data=kaggle"]  # what the script adds before the user's
        compose_config("train", script_overrides + argv[argv.index(script) + 1 :])
    elif argv[0] == "curl":
        from colorization.inference.releases import RELEASES

        target, url = Path(argv[argv.index("-o") + 1]), argv[-1]
        release = next(r for r in RELEASES.values() if r.filename == target.name)
        assert str(target.parent) == "~/.cache/bw-colorization", "the cache's default place"
        assert url.rsplit("/", 1)[0] == release.url.rsplit("/", 1)[0], f"{url} is not where {release.name} lives"
    else:  # python -m pytest
        import tomllib

        for word in argv[3:]:
            if word.startswith("tests"):
                assert (REPO / word).exists()
        if "-m" in argv[3:]:
            markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
            expression = argv[argv.index("-m", 3) + 1]
            assert {m.split(":")[0] for m in markers} >= set(re.findall(r"\w+", expression)) - {"not", "and", "or"}


# ---- what a reader's folder holds: tiny photos, a trained run, a sweep, release weights --------------


def write_photo(path: Path, size: tuple[int, int], seed: int) -> None:
    from skimage import data

    photo = data.astronaut() if seed % 2 else data.coffee()
    path.parent.mkdir(parents=True, exist_ok=True)
    top = 20 * seed
    Image.fromarray(photo[top : top + 300, :300]).resize(size).save(path)


@dataclass
class Workspace:
    root: Path
    """Holds the files every page's commands use; each page runs in its own copy of the links."""
    run_dir: Path
    cache: Path
    releases: dict[str, Path]
    """Release name -> its random-weight stand-in, named like the release."""

    def substitutions(self) -> dict[str, str]:
        return {
            "<run>": RUN_NAME,
            "<sweep>": SWEEP_NAME,
            "/path/to/photos": str(self.root / "photos"),
            "/path/to/packed": str(self.root / "packed"),
            "~/.cache/bw-colorization": str(self.cache),
        }

    def page_dir(self, page: Path) -> Path:
        folder = self.root / "pages" / page.stem
        folder.mkdir(parents=True)
        for name in ("photo.jpg", "portrait.jpg", "scans", "old", "photos", "logs", "film.mp4", "reels"):
            (folder / name).symlink_to(self.root / name)
        return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, sample_root, release_files) -> Iterator[Workspace]:
    from colorization.files import downloads
    from colorization.inference.releases import RELEASES, Release
    from colorization.jobs.train import train
    from tests.helpers.http_server import Server

    root = tmp_path_factory.mktemp("reader")
    write_photo(root / "photo.jpg", (256, 256), 1)
    write_photo(root / "portrait.jpg", (256, 256), 2)
    write_photo(root / "old" / "grandma.jpg", (64, 48), 3)
    write_photo(root / "scans" / "a.jpg", (64, 48), 4)
    write_photo(root / "scans" / "b.tif", (48, 64), 5)
    for k in range(2):
        write_photo(root / "photos" / f"p{k}.jpg", (72, 56), k)
    write_film(root / "film.mp4", film_clip(FILM_FRAMES, 48, 64).gray)  # with a tone
    (root / "reels").mkdir()
    write_film(root / "reels" / "newsreel.mp4", film_clip(REEL_SECONDS * 2, 48, 64).gray, fps=Fraction(2), audio=None)

    run_dir = root / "logs" / "train" / "runs" / RUN_NAME
    train(compose_config("train", [*tiny_overrides(sample_root, run_dir), "trainer.log_every_n_steps=1"]))
    write_sweep(root / "logs" / "train" / "multiruns" / SWEEP_NAME)

    server = Server()
    with pytest.MonkeyPatch.context() as patch:
        cache = root / "cache"
        patch.setenv(downloads.CACHE_ENV, str(cache))
        patch.delenv(downloads.OFFLINE_ENV, raising=False)
        for name in SERVED_RELEASES:
            path = release_files[name]
            server.files[f"/{path.name}"] = path.read_bytes()
            digest = path.stem.rsplit("-", 1)[1]
            known = RELEASES[name]
            release = Release(name, server.url(f"/{path.name}"), path.name, known.family, known.licence,
                              path.stat().st_size, digest)  # fmt: skip
            patch.setitem(RELEASES, name, release)
        yield Workspace(root, run_dir, cache, dict(release_files))
    server.close()


def summarize_table() -> tuple[list[str], list[list[str]]]:
    """The sweep summary table of operations.md: its header and rows."""
    text = (REPO / "docs" / "operations.md").read_text()
    start = text.index("| job |")
    lines = text[start:].split("\n\n")[0].splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return rows[0], rows[2:]


def write_sweep(sweep: Path) -> None:
    """A multirun directory whose jobs hold what the summary table of operations.md lists."""
    header, rows = summarize_table()
    for row in rows:
        values = dict(zip(header, row, strict=True))
        job = sweep / values["job"]
        (job / ".hydra").mkdir(parents=True)
        overrides = ["experiment=cnn_variants", "data=sample", f"model={values['model']}"]
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        metrics = {key: float(value) for key, value in values.items() if "/" in key}
        (job / "metrics.json").write_text(json.dumps(metrics))


# ---- running a page --------------------------------------------------------------------------------


class ParsedError(Exception):
    """Raised by the patched argument parser once it has parsed: the command stops there."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


def parse_only_reason(argv: list[str]) -> str | None:
    """Why a command is only parsed here, or None when it runs."""
    if "cuda" in argv and not torch.cuda.is_available():
        return "needs a CUDA device"
    model = argv[argv.index("--model") + 1] if "--model" in argv else ""
    if model.startswith("ddcolor"):
        return "DDColor's networks take tens of seconds each to build, load and run on a CPU"
    if argv[0] == "colorize-demo":
        return "serves until stopped (run for real by test_the_web_page_command_serves_the_page)"
    return None


def app_main(argv: list[str]):
    """The function the command line `argv` runs, and the sys.argv it runs with."""
    if argv[0] in ("colorize", "colorize-demo"):
        (script,) = entry_points(group="console_scripts", name=argv[0])
        return script.load(), argv
    module = argv[2]

    def run_module() -> None:
        runpy.run_module(module, run_name="__main__", alter_sys=True)

    return run_module, [module, *argv[3:]]


def run_app(argv: list[str], parse_only: bool, monkeypatch: pytest.MonkeyPatch) -> int | argparse.Namespace:
    """Run (or only parse) an app's command line in this process: its exit code, or what it parsed."""
    main, sys_argv = app_main(argv)
    with monkeypatch.context() as patch:
        patch.setattr(sys, "argv", sys_argv)
        if parse_only:
            original = argparse.ArgumentParser.parse_args

            def parse_and_stop(self, args=None, namespace=None):
                raise ParsedError(original(self, args, namespace))

            patch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
        try:
            code = main()
        except ParsedError as parsed:
            return parsed.namespace
        except SystemExit as exit_:
            code = exit_.code
    return int(code or 0)


def check_parsed(namespace: argparse.Namespace, cwd: Path) -> None:
    """What a parse-only command names exists: its model (a file or a release name), its folders."""
    from colorization.inference.releases import RELEASES

    model = getattr(namespace, "model", None)
    if model is not None:
        assert (cwd / model).exists() or model in RELEASES, f"--model {model}: neither a file nor a release"
    for name in getattr(namespace, "inputs", []):
        assert list(cwd.glob(name)) or (cwd / name).exists(), f"{name}: no such input"
    if getattr(namespace, "models", None):
        assert (cwd / namespace.models).is_dir()


def output_folder(argv: list[str]) -> str:
    return argv[argv.index("--out") + 1] if "--out" in argv else "colorized"


def run_page(page: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys) -> list[str]:
    """Run a page's Python blocks and app commands in order; returns what was only parsed, and why."""
    cwd = workspace.page_dir(page)
    monkeypatch.chdir(cwd)
    namespace: dict = {}
    parsed: list[str] = []
    for block in blocks(page):
        if block.language == "python":
            source = block.text
            for filename, release in OFFICIAL_FILES.items():
                source = source.replace(f'"{filename}"', repr(str(workspace.releases[release])))
            exec(compile(source, f"{page.name} block at line {block.line}", "exec"), namespace)  # noqa: S102
        elif block.language in ("json", "csv"):
            from colorization.color.hints import parse_hints

            name = f"hints.{block.language}"
            assert parse_hints(block.text, name), f"{page.name}:{block.line}: a hints file without points"
            (cwd / name).write_text(block.text + "\n")
        for command in commands(block):
            if kind(command) != "app":
                continue
            text = command.text
            for placeholder, value in workspace.substitutions().items():
                text = text.replace(placeholder, value)
            argv = Command(page, command.line, text).argv
            reason = parse_only_reason(argv)
            if reason is None and argv[0] == "colorize":
                shutil.rmtree(cwd / output_folder(argv), ignore_errors=True)  # every run colorizes, none skips
            capsys.readouterr()
            result = run_app(argv, reason is not None, monkeypatch)
            out, err = capsys.readouterr()
            if reason is not None:
                assert isinstance(result, argparse.Namespace), f"{command.id}: ran instead of stopping after parsing"
                check_parsed(result, cwd)
                parsed.append(f"{command.text}: {reason}")
                continue
            assert result == 0, f"{command.id}: `{command.text}` exited {result}\n{out}\n{err}"
            if argv[0] == "colorize":
                done = re.search(r"done (\d+), skipped 0, failed 0", out)
                assert done and int(done.group(1)) >= 1, f"{command.id}: {out}"
    return parsed


def readme_promises(cwd: Path, workspace: Workspace) -> None:
    from colorization.video.io import probe

    colour = Image.open(cwd / "photo_colour.png")
    assert colour.size == Image.open(workspace.root / "photo.jpg").size and colour.mode == "RGB"
    film = probe(cwd / "colorized" / "film.mp4")
    assert (film.frame_count, film.width, film.height) == (FILM_FRAMES, 64, 48)
    assert [stream.kind for stream in film.other_streams] == ["audio"]


def training_promises(cwd: Path, workspace: Workspace) -> None:
    from colorization.data.lab_arrays import AB_DIR, L_FILE

    packed, photos = workspace.root / "packed", len(list((workspace.root / "photos").glob("*.jpg")))
    assert np.load(packed / L_FILE, mmap_mode="r").shape == (photos, 224, 224)
    assert np.load(packed / AB_DIR / "ab1.npy", mmap_mode="r").shape == (photos, 224, 224, 2)


def operations_promises(cwd: Path, workspace: Workspace) -> None:
    header, rows = summarize_table()
    written = (workspace.root / "logs" / "train" / "multiruns" / SWEEP_NAME / "summary.md").read_text().splitlines()
    assert written[0] == "| " + " | ".join(header) + " |"
    assert written[2:] == ["| " + " | ".join(row) + " |" for row in rows], "the table summarize prints"


def colorize_promises(cwd: Path, workspace: Workspace) -> None:
    import onnxruntime

    from colorization.video.io import probe

    for film in (cwd / "plain" / "film.mp4", cwd / "film_colour.mp4"):  # (colorized/ is reused by later commands)
        assert probe(film).frame_count == FILM_FRAMES, film
    assert probe(cwd / "trial" / "newsreel.mp4").frame_count == 4  # --start 10 --end 12 at 2 frames/s

    # as the page runs an export outside this project: onnxruntime and NumPy alone, any size
    l = (np.random.default_rng(0).random((1, 1, 40, 30)) * 100).astype(np.float32)
    (lab,) = onnxruntime.InferenceSession(str(cwd / "cnn.onnx")).run(["lab"], {"l": l})
    assert lab.shape == (1, 3, 40, 30) and np.allclose(lab[:, :1], l, atol=1e-3)
    scripted = torch.jit.load(cwd / "cnn.pt")(torch.from_numpy(l))
    assert scripted.shape == (1, 3, 40, 30)


PROMISES = {"README": readme_promises, "training": training_promises, "operations": operations_promises}
PROMISES["colorize"] = colorize_promises
"""What a page's commands leave behind that the page describes."""


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_each_pages_examples_and_commands_run_in_order(page, workspace, monkeypatch, capsys):
    run_page(page, workspace, monkeypatch, capsys)
    if page.stem in PROMISES:
        PROMISES[page.stem](workspace.root / "pages" / page.stem, workspace)


def test_the_make_train_excerpt_is_what_the_summary_prints():
    from colorization.jobs.train_report import RunSummary, SavedCheckpoints, Score, format_summary

    text = (REPO / "docs" / "training.md").read_text()
    block = re.search(r"```text\n\$ make train\n(.*?)```", text, flags=re.DOTALL).group(1)
    lines = block.splitlines()
    assert re.fullmatch(
        r"cnn on data/sample \(\d+ train, \d+ val, \d+ test images\): batch size: 16 per device x 1 device\(s\) "
        r"x 1 node\(s\) = 16 global, cpu, 5 epoch\(s\)",
        lines[1],
    )
    excerpt = lines[next(i for i, line in enumerate(lines) if line.startswith("Run directory: ")) :]
    run = REPO / excerpt[0].removeprefix("Run directory: ")
    best, last = (int(e) for e in re.findall(r"\(epoch (\d+)\)", excerpt[1]))
    scores = {
        split: Score(model=float(model), gray=float(gray), images=int(images), which=which)
        for split, model, gray, images, which in re.findall(
            r"(val|test)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+\((.+)\)", block
        )
    }
    summary = RunSummary(
        run_dir=run,
        saved=SavedCheckpoints(
            run / f"checkpoints/best_epoch{best:03d}.ckpt", best, run / "checkpoints/last.ckpt", last
        ),
        sample_sheet=run / f"samples/epoch_{last:03d}.png",
        scores=scores,
        builtin_photos=True,
        wandb=excerpt[6].split("W&B", 1)[1].strip(),
    )
    assert format_summary(summary, cwd=REPO).splitlines() == excerpt


def results_table() -> tuple[list[str], dict[str, list[str]]]:
    """The results table of evaluation.md: its header and rows by model."""
    text = (REPO / "docs" / "evaluation.md").read_text()
    lines = text[text.index("| model | MSE") :].split("\n\n")[0].splitlines()
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return cells[0], {row[0]: row[1:] for row in cells[2:]}


def test_the_results_table_is_evaluate_pys_table_of_every_model_config():
    from colorization.jobs.eval_results import table_cells
    from colorization.metrics.image import FULL_METRICS

    header, rows = results_table()
    row = {"model": "gray", "images": 48, "images_per_s": None} | {key: 0.0 for key in FULL_METRICS}
    assert header == [h for h in table_cells([row], [])[0] if h != "images/s"], "the speed column is left out"
    configs = {path.stem for path in (CONF_DIR / "model").glob("*.yaml")}
    assert set(rows) - {"gray", "ground truth"} == configs - {"model1", "siggraph17_regression"}


def test_the_results_tables_reference_rows_are_the_printed_tables():
    """Both tables of evaluation.md score the same 48 built-in test images: their gray and ground-truth rows agree."""
    text = (REPO / "docs" / "evaluation.md").read_text()
    printed = re.search(r"```text\n\$ python evaluate.py checkpoints=.*?```", text, flags=re.DOTALL).group(0)
    _, documented = results_table()
    for name in ("gray", "ground truth"):
        (line,) = [line for line in printed.splitlines() if line.strip().startswith(name + "  ")]
        assert line.split()[-len(documented[name]) :] == documented[name], name


@pytest.mark.slow
def test_the_web_page_command_serves_the_page(workspace):
    """`colorize-demo --models logs/train` of colorize.md, on any free port: the page and its models."""
    (command,) = [c for c in ALL_COMMANDS if c.argv[0] == "colorize-demo"]
    script = Path(sys.executable).with_name("colorize-demo")
    argv = [str(script) if script.exists() else "colorize-demo", *command.argv[1:], "--port", "0", "--device", "cpu"]
    cwd = workspace.root
    server = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = server.stdout.readline()
        address = re.search(r"serving (http://\S+) \((\d+) colorizers", line)
        assert address and int(address.group(2)) >= 1, line + server.stderr.read()
        page = None
        for _ in range(60):  # the line comes as the server starts; it answers a moment later
            try:
                with urllib.request.urlopen(address.group(1) + "/", timeout=30) as response:
                    page = response.read()
                break
            except urllib.error.URLError:
                time.sleep(0.5)
        assert page is not None and b"<html" in page.lower()
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0


@pytest.mark.parametrize("command", hydra_commands(), ids=lambda command: command.id)
def test_every_documented_command_passes_the_command_line_check(command):
    script, args = command.argv[1], [PLACEHOLDER.sub("x", word) for word in command.argv[2:]]  # <run>: a name
    check_overrides(args, CONF_DIR, Path(script).stem)
