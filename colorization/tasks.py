"""The task wrapper of every entry point: user errors become one line and exit code 2, and W&B is closed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from colorization.errors import find_user_error
from colorization.loggers import finish_wandb

USER_ERROR_EXIT_CODE = 2
T = TypeVar("T")


def run_task(job: Callable[[], T]) -> T:
    """Run `job`; a `ColorizationError` becomes ``error: <message>`` on stderr and exit code 2.

    Any other exception is a bug and keeps its traceback. The W&B run, if the job opened one, is
    closed whatever happens, so that every job of a multirun gets its own run.
    """
    try:
        return job()
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise
        print(f"error: {user_error}", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT_CODE) from None
    finally:
        finish_wandb()
