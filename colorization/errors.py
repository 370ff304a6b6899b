"""The project's own error types.

Entry points catch `ColorizationError` and print its one-line message instead of a traceback:
these errors describe bad input (a config value, a data file), never a bug in the code.
"""

import importlib.util
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class ColorizationError(Exception):
    """Bad input that the user can fix; the message names the key/path/value and what was expected."""

    exit_code = 2
    """The process's exit code when an entry point stops on this error (README, "When things go wrong")."""


class ConfigError(ColorizationError):
    """A configuration value is missing, unknown or out of range."""


class DataError(ColorizationError):
    """A data file is missing or has the wrong dtype, shape or count."""


class DivergedError(ColorizationError):
    """A loss, gradient norm or metric became NaN or infinite; the last finite checkpoint is kept."""

    exit_code = 3


class SigtermError(ColorizationError):
    """SIGTERM stopped training after a resumable ``last.ckpt`` was written (128 + SIGTERM, as a shell reports it)."""

    exit_code = 143


def find_user_error(error: BaseException | None) -> ColorizationError | None:
    """The project's own error behind `error`, looking through wrappers such as Hydra's
    ``InstantiationException`` that re-raise it ``from`` the original."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ColorizationError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def exit_on_user_error(job: Callable[[], T]) -> T:
    """Run `job`; a `ColorizationError` becomes ``error: <message>`` on stderr and its `exit_code`
    (`SystemExit`). Any other exception is a bug and keeps its traceback."""
    try:
        return job()
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise
        print(f"error: {user_error}", file=sys.stderr)
        raise SystemExit(user_error.exit_code) from None


def check_int(key: str, value: object, low: int, high: int) -> int:
    """`value` if it is an integer in [low, high]; otherwise a `ConfigError` naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{key}={value!r} is out of range; expected an integer in {low}..{high}")
    return value


def check_choice(key: str, value: object, choices: Iterable[object]) -> object:
    """`value` if it is one of `choices`; otherwise a `ConfigError` naming `key` and the choices."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is unknown; expected one of {sorted(choices, key=str)}")
    return value


def require_extra(extra: str, modules: Iterable[str], needed_for: str) -> None:
    """Refuse (`ConfigError`) to go on when an optional dependency is missing: `modules` come with the
    package's `extra` (``pip install 'bw-colorization[onnx]'``), which `needed_for` needs."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(
            f"{needed_for} needs {', '.join(missing)}: pip install 'bw-colorization[{extra}]' (make install "
            "installs every extra)"
        )
