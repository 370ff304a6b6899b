"""What the entry points share: running a job as a task, and what only the running Hydra app knows.

`run_task` turns user errors into one line and their exit code (2 for bad input) and closes W&B
whatever happens.
`hydra_job` is the one place that reads Hydra's runtime config (the command line, the multirun
and the chosen options); the entry points hand what it finds to the library (`apply_to_loggers`,
`evaluate(cfg, command)`), which never reads it itself.
`check_overrides` runs before Hydra: a command line Hydra would refuse with a page of text is one
``error:`` line instead.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from colorization.errors import ColorizationError, ConfigError, check_choice, exit_on_user_error
from colorization.jobs.run_dirs import remove_unstarted_run_dir
from colorization.jobs.tracking import TAG_GROUPS, finish_wandb, multirun_group, run_tags

USER_ERROR_EXIT_CODE = ColorizationError.exit_code
T = TypeVar("T")


def run_task(job: Callable[[], T], run_dir: str | Path | None = None) -> T:
    """Run `job`; a `ColorizationError` becomes ``error: <message>`` on stderr and its `exit_code`
    (2 for bad input, 3 for a diverged training, 143 after a SIGTERM).

    Any other exception is a bug and keeps its traceback. After a user error, `run_dir` (the
    job's output directory) is deleted when it holds only what Hydra wrote before the job started
    (`run_dirs.remove_unstarted_run_dir`), so failed starts leave no look-alike run behind. The
    W&B run, if the job opened one, is closed whatever happens, so that every job of a multirun
    gets its own run.
    """
    try:
        return exit_on_user_error(job)
    except SystemExit:
        if run_dir is not None:
            remove_unstarted_run_dir(run_dir)
        raise
    finally:
        finish_wandb()


@dataclass(frozen=True)
class HydraJob:
    """What the running Hydra app knows about this job."""

    command: str
    """The command line that made the job, e.g. ``python evaluate.py split=val``."""
    group: str | None = None
    """The W&B group of a multirun's jobs (`tracking.multirun_group`); None for a single run."""
    choices: dict[str, str] = field(default_factory=dict)
    """Config group -> chosen option (``model: cnn``)."""
    output_dir: str | None = None
    """The job's run directory."""


def hydra_job(script: str) -> HydraJob:
    """The running Hydra job of `script` (``train.py``); call from an entry point's ``@hydra.main``."""
    hydra_cfg = HydraConfig.get()
    command = " ".join([f"python {script}", *(shlex.quote(o) for o in hydra_cfg.overrides.task)])
    group = None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        group = multirun_group(hydra_cfg.job.name, hydra_cfg.sweep.dir)
    choices = {key: str(value) for key, value in hydra_cfg.runtime.choices.items() if value is not None}
    return HydraJob(command=command, group=group, choices=choices, output_dir=hydra_cfg.runtime.output_dir)


def apply_to_loggers(cfg: DictConfig, job: HydraJob) -> None:
    """Give every logger entry of `cfg` that takes them the multirun's group (when its own is null)
    and the chosen model and colour space as tags (see `tracking.run_tags`)."""
    for entry in (cfg.get("logger") or {}).values():
        if entry is None:
            continue
        if "group" in entry and entry.group is None:
            entry.group = job.group
        if "tags" in entry:
            entry.tags = run_tags(entry.tags, [job.choices.get(group) for group in TAG_GROUPS])


MOVED_KEYS = {
    "model.filters": "model.net.filters",
    "model.stride": "model.net.stride",
    "model.padding": "model.net.padding",
    "model.lr": "model.optimizer.lr",
    "model.betas": "model.optimizer.betas",
    "model.lambda_gp": "model.gan_loss.lambda_gp",
}
"""Settings whose key moved when the configs came to name only what differs from the code's defaults:
old key -> where it lives now. (``model.gan_loss`` became the config group ``model/gan_loss``: every
key that names a group is told so, see `check_overrides`.)"""
HYDRA_CONFIG_FLAGS = ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir", "--experimental-rerun")
"""Hydra flags that choose another config than `check_overrides` composes: it leaves such commands to Hydra."""
MULTIRUN_FLAGS = ("-m", "--multirun")
HELP_FLAGS = ("-h", "--help")


def answer_help(args: list[str], config_dir: str | Path, config_name: str) -> None:
    """Print the entry point's ``--help`` and exit 0 when `args` ask for it, before Hydra starts.

    The text is the app's ``conf/hydra/help/<config_name>.yaml`` template, resolved, exactly what
    Hydra prints: Hydra would also list every config group's options to fill in placeholders the
    template does not use, which takes 5-10 s on a small CPU. With any other Hydra flag, or an override
    of the help config itself, the command is left to Hydra.
    """
    if not any(arg in HELP_FLAGS for arg in args):
        return
    other_flags = [arg for arg in args if arg.startswith("-") and arg not in HELP_FLAGS]
    if other_flags or any("hydra/help" in arg or "hydra.help" in arg for arg in args):
        return
    help_cfg = OmegaConf.load(Path(config_dir) / "hydra" / "help" / f"{config_name}.yaml")
    print(OmegaConf.create({"hydra": {"help": help_cfg}}).hydra.help.template)
    raise SystemExit(0)


def check_overrides(args: list[str], config_dir: str | Path, config_name: str) -> None:
    """Refuse, before Hydra starts, a command line that Hydra would refuse with a page of text and exit
    code 1, or that would fail later for a reason this can name: one ``error:`` line and exit code 2.

    Call it from the entry point with ``sys.argv[1:]``. It refuses an unknown ``group=option``, a key
    that names a config group (``model.gan_loss=wgangp``: ``model/gan_loss=wgangp``), and anything
    Hydra's composition of the config refuses (an unknown key, a group the chosen configs do not
    use, an override it cannot parse), naming the override and what to write instead. A multirun is
    composed once with each sweep's first value, and once more for each other value of each sweep.
    """
    config_dir = Path(config_dir).resolve()
    run_task(lambda: _check_overrides(args, config_dir, config_name))


def _check_overrides(args: list[str], config_dir: Path, config_name: str) -> None:
    if any(arg in HYDRA_CONFIG_FLAGS or arg.startswith(tuple(f"{f}=" for f in HYDRA_CONFIG_FLAGS)) for arg in args):
        return
    lines = [arg for arg in args if arg.startswith("~") or (not arg.startswith("-") and "=" in arg)]
    _check_group_options(lines, config_dir)
    parser = OverridesParser.create()
    overrides = []
    for line in lines:
        try:
            overrides += parser.parse_overrides([line])
        except OverrideParseException as error:
            reason = str(error).splitlines()[0]
            raise ConfigError(f"{line!r} is not an override Hydra can read ({reason}); expected key=value") from None
    for override in overrides:
        _check_not_a_group(override, config_dir)
    multirun = any(arg in MULTIRUN_FLAGS for arg in args)
    if not multirun and any(override.is_sweep_override() for override in overrides):
        multirun = _multirun_by_config(overrides, config_dir, config_name)
    for job in _jobs(overrides, multirun):
        _check_composes(job, config_dir, config_name)


def _multirun_by_config(overrides: list[Override], config_dir: Path, config_name: str) -> bool:
    """Whether the config itself asks for a multirun (``hydra.mode: MULTIRUN``, as ``hparams_search=optuna``
    does), so that sweeps on the command line need no ``-m``."""
    fixed = [override.input_line for override in overrides if not override.is_sweep_override()]
    try:
        return _compose(config_dir, config_name, fixed).hydra.mode == RunMode.MULTIRUN
    except Exception:  # refused for another reason, which the jobs' composition names
        return False


def _check_group_options(lines: list[str], config_dir: Path) -> None:
    """Refuse a ``group=option`` whose ``<config_dir>/<group>/<option>.yaml`` does not exist, listing the
    options; sweeps (``model=cnn,model2``) option by option, sweep functions left to Hydra."""
    for line in lines:
        key, _, value = line.lstrip("+~").partition("=")
        group = config_dir / key
        if key.startswith("hydra") or not group.is_dir() or "(" in value or "$" in value:
            continue
        options = sorted(p.stem for p in group.glob("*.yaml"))
        for option in value.split(","):
            if option not in ("null", ""):
                check_choice(key, option, options)


def _check_not_a_group(override: Override, config_dir: Path) -> None:
    """Refuse ``a.b=option`` where ``a/b`` is a config group (as ``model.gan_loss`` became): Hydra would set
    the key to the option's name, which the class it configures cannot take."""
    key = override.key_or_group
    if "." not in key or override.is_delete() or key.startswith("hydra"):
        return
    group = key.replace(".", "/")
    if (config_dir / group).is_dir():
        options = sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
        value = override.value() if not override.is_sweep_override() else ",".join(override.sweep_string_iterator())
        raise ConfigError(
            f"{override.input_line}: {key} is set by the config group {group}; use {group}={value} "
            f"(options: {', '.join(options)})"
        )


def _jobs(overrides: list[Override], multirun: bool) -> list[list[str]]:
    """The override lists to compose: every sweep at its first value, then each other value of each sweep
    once (not every combination: a bad value shows in the job that has it). Sweeps Hydra cannot list
    before it runs (``interval(...)``, ``glob(...)``) are left to it."""
    fixed, sweeps = [], []
    for override in overrides:
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        if not multirun:
            raise ConfigError(
                f"{override.input_line}: several values sweep only in a multirun; add -m (--multirun), or write "
                f"a list as {override.get_key_element()}=[...]"
            )
        try:
            values = list(override.sweep_string_iterator())
        except HydraException:
            continue
        sweeps.append([f"{override.get_key_element()}={value}" for value in values])
    first = [values[0] for values in sweeps]
    jobs = [fixed + first]
    for index, values in enumerate(sweeps):
        jobs += [fixed + first[:index] + [value] + first[index + 1 :] for value in values[1:]]
    return jobs


def _compose(config_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)


def _check_composes(job: list[str], config_dir: Path, config_name: str) -> None:
    """Compose `job`; when Hydra refuses it, find the override it refuses (the job composes without it)
    and say what is wrong with it in one line."""
    try:
        _compose(config_dir, config_name, job)
        return
    except Exception as error:  # whatever composition raises is about the command line
        refusal = str(error).splitlines()[0]
    for line in job:
        others = [other for other in job if other != line]
        try:
            base = _compose(config_dir, config_name, others)
        except Exception:
            continue
        (override,) = OverridesParser.create().parse_overrides([line])
        raise ConfigError(_what_is_wrong(override, base, config_dir, refusal))
    raise ConfigError(f"{' '.join(job)}: {refusal}")


def _what_is_wrong(override: Override, base: DictConfig, config_dir: Path, refusal: str) -> str:
    """One line on why Hydra refuses `override` in a config that is `base` without it."""
    key, line = override.key_or_group, override.input_line
    choices = base.hydra.runtime.choices
    if (config_dir / key).is_dir() and key not in choices and not override.is_add():
        parent, _, group = key.rpartition("/")
        chooser = f"{parent}={choices.get(parent)}" if parent in choices else "the chosen config"
        users = ", ".join(f"{parent}={name}" for name in _options_using(config_dir, parent, group))
        where = f"it is an option of {users}" if users else f"add one with +{line}"
        return f"{line}: {chooser} has no {key} to choose; {where}"
    if override.is_delete() or override.is_add() or (config_dir / key).is_dir():
        return f"{line}: {refusal}"
    if OmegaConf.select(base, key, default=_ABSENT) is not _ABSENT:
        return f"{line}: {refusal}"
    value = line.partition("=")[2]
    parent_key, _, name = key.rpartition(".")
    parent = OmegaConf.select(base, parent_key) if parent_key else base
    problem = f"{line}: the config has no key {key!r}"
    if key in MOVED_KEYS:
        new = MOVED_KEYS[key]
        new_parent = OmegaConf.select(base, new.rpartition(".")[0])
        if new_parent is None:
            return f"{problem}; it moved to {new}, and this config names no {new.rpartition('.')[0]}"
        plus = "" if OmegaConf.select(base, new, default=_ABSENT) is not _ABSENT else "++"
        return f"{problem}; it moved to {new}: use {plus}{new}={value}"
    keys = [k for k in _dotted_keys(base) if k.startswith("hydra.") == key.startswith("hydra.")]
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.8)
    if close:
        return f"{problem}; did you mean {close[0]}?"
    if isinstance(parent, DictConfig) and "_target_" in parent:
        return f"{problem}; a setting the config leaves to the code's default is set with ++{key}={value}"
    siblings = sorted(str(k) for k in parent if k != "hydra") if isinstance(parent, DictConfig) else []
    return f"{problem}; expected one of {siblings} under {parent_key or 'the top level'}"


_ABSENT = object()


def _dotted_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """Every key of a config, dotted (``model.net.filters``)."""
    if isinstance(node, DictConfig):
        for name in node:
            key = f"{prefix}{name}"
            yield key
            yield from _dotted_keys(node._get_node(name), key + ".")


def _options_using(config_dir: Path, parent: str, group: str) -> list[str]:
    """The options of config group `parent` whose defaults list names its sub-group `group`."""
    users = []
    for path in sorted((config_dir / parent).glob("*.yaml")):
        defaults = OmegaConf.load(path).get("defaults") or []
        names = [next(iter(entry)) if isinstance(entry, DictConfig) else str(entry) for entry in defaults]
        if any(name.removeprefix("override ").strip() == group for name in names):
            users.append(path.stem)
    return users
