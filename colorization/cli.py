"""Helpers for the entry points: user errors become one line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from colorization.errors import find_user_error

USER_ERROR_EXIT_CODE = 2


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a `ColorizationError` into ``error: <message>`` on stderr and its exit code (2 for bad input).

    Any other exception is a bug and keeps its traceback.
    """
    try:
        yield
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise
        print(f"error: {user_error}", file=sys.stderr)
        raise SystemExit(user_error.exit_code) from None
