"""Marks for some values of a parametrized test, when only those are slow."""

from __future__ import annotations

from collections.abc import Iterable

import pytest


def with_slow(values: Iterable, slow: Iterable) -> list:
    """`values` for ``pytest.mark.parametrize``, those in `slow` marked ``slow`` (a tuple is one value per argument)."""
    values, slow = list(values), list(slow)
    unknown = [value for value in slow if value not in values]
    assert not unknown, f"{unknown}: not among the parameters {values}"
    return [
        pytest.param(*(value if isinstance(value, tuple) else (value,)), marks=pytest.mark.slow)
        if value in slow
        else value
        for value in values
    ]
