"""`train.py --help` and `evaluate.py --help`: each lists its own config groups, complete, and
common commands that compose."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys

import pytest

from tests.helpers.configs import CONF_DIR, REPO, compose_config

EVALUATE_GROUPS = ("data", "logger", "paths", "eval_experiment")
"""The groups in `conf/evaluate.yaml`'s defaults list."""


def group_options(group: str) -> set[str]:
    """The options of a config group: its yaml files' names."""
    return {path.stem for path in (CONF_DIR / group).glob("*.yaml")}


def train_groups() -> list[str]:
    """Every group under conf/ except Hydra's and evaluate.py's own, with nested groups (model/gan_loss)."""
    groups = []
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        group = path.parent.relative_to(CONF_DIR).as_posix()
        if group != "." and not group.startswith(("hydra", "eval_experiment")) and group not in groups:
            groups.append(group)
    return groups


@functools.cache  # one subprocess per script for the whole file
def help_text(script: str) -> str:
    result = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def listed_options(text: str, group: str) -> set[str]:
    """The options the help lists on the line of `group` (the words before any parenthesis)."""
    match = re.search(rf"^\s+{re.escape(group)}\s{{2,}}(.+)$", text, re.MULTILINE)
    assert match, f"help does not list the group {group!r}"
    return {option.strip() for option in match.group(1).split("(")[0].split(",")}


def common_commands(text: str, script: str) -> list[list[str]]:
    """The overrides of each command under 'Common commands' (comments and -m dropped)."""
    section = text.split("== Common commands ==")[1].split("==")[0]
    commands = [line.split(" #")[0].strip() for line in section.splitlines() if line.strip().startswith("python")]
    assert all(command.startswith(f"python {script}") for command in commands)
    return [[word for word in shlex.split(command)[2:] if word != "-m"] for command in commands]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "config", "groups"),
    [("train.py", "train", train_groups()), ("evaluate.py", "evaluate", list(EVALUATE_GROUPS))],
)
def test_help_lists_its_own_groups_completely_and_five_commands_that_compose(script, config, groups):
    text = help_text(script)
    assert "powered by Hydra" not in text  # not Hydra's generic text
    for group in groups:
        assert listed_options(text, group) == group_options(group), f"{script} --help: options of {group}"
    commands = common_commands(text, script)
    assert len(commands) == 5
    for overrides in commands:
        compose_config(config, overrides)  # every command is one the config accepts


@pytest.mark.slow
def test_train_help_leaves_out_evaluate_settings_and_evaluate_help_leaves_out_training():
    train_help, evaluate_help = help_text("train.py"), help_text("evaluate.py")
    assert "eval_experiment" not in train_help and "study_table" not in train_help
    assert "eval_experiment" in evaluate_help
    for group in ("model", "trainer", "colorspace", "experiment"):
        assert not re.search(rf"^\s+{group}\s", evaluate_help, re.MULTILINE), group


@pytest.mark.slow
@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_help_answered_before_hydra_is_the_text_hydra_prints(script):
    """`tasks.answer_help` prints the help template without Hydra's slow listing of every group; an
    override of ``hydra.help`` leaves the command to Hydra, whose text must be the same."""
    by_hydra = subprocess.run(
        [sys.executable, script, "--help", f"hydra.help.app_name={script}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert by_hydra.returncode == 0, by_hydra.stderr
    assert help_text(script) == by_hydra.stdout
