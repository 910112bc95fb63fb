"""How many errored rows an evaluation may have before it fails: ``fail_on_error``.

The verdict depends on what is stored, never on which rows ran this time, so
that running an unchanged experiment again gives the same verdict: a resumed
run runs only the rows that errored, but judges the evaluation over every row
stored.

- default (``None``): the evaluation fails when **every** stored row errored
  (at least one row stored);
- ``True``: it fails when any stored row errored;
- ``False``: errored rows never fail it;
- a whole number ``N`` (``0``, ``5``): it fails when more than ``N`` stored rows
  errored (``0`` is ``True``);
- a fraction ``0 < F < 1`` (``0.1``, or the text ``10%``): it fails when more
  than that share of the stored rows errored (``0.1``: more than 10 %).

The same values come from ``@foreach(..., fail_on_error=...)``, the pytest
flag ``--fail-on-error``, the ini setting ``dotevals_fail_on_error`` and the
``Runner(fail_on_error=...)`` keyword; an evaluation's own value wins over the
run's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dotevals.errors import ConfigurationError

__all__ = ["ErrorBound", "exceeded", "parse_fail_on_error"]

_TRUE = ("true", "yes", "on")
_FALSE = ("false", "no", "off")


@dataclass(frozen=True)
class ErrorBound:
    """At most ``count`` errored rows, or at most ``fraction`` of the stored rows; with
    neither, errored rows never fail the evaluation."""

    count: int | None = None
    fraction: float | None = None

    def describe(self) -> str:
        """``fail_on_error=5``, ``fail_on_error=0.1`` (10 %), as written."""
        if self.count is not None:
            return "fail_on_error=True" if self.count == 0 else f"fail_on_error={self.count}"
        if self.fraction is not None:
            return f"fail_on_error={self.fraction:g} ({self.fraction * 100:g} %)"
        return "fail_on_error=False"


def parse_fail_on_error(value: bool | int | float | str | ErrorBound | None) -> ErrorBound | None:
    """``None`` (fail when every stored row errored), ``True``, ``False``, a whole
    number of rows >= 0 or a fraction between 0 and 1 (also ``"10%"``)."""
    if value is None or isinstance(value, ErrorBound):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
        value = value.strip().lower() in _TRUE
    if isinstance(value, bool):
        return ErrorBound(count=0) if value else ErrorBound()
    number = _number(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ConfigurationError(
            "fail_on_error must be True, False, a number of rows (5: fail when more than 5 "
            f"stored rows errored) or a fraction below 1 (0.1 or 10%), got {value!r}"
        )
    if 0 < number < 1:
        return ErrorBound(fraction=number)
    if number != int(number):
        raise ConfigurationError(
            f"fail_on_error={value!r}: a number of rows must be whole (5), and a fraction "
            "must be below 1 (0.1 or 10%)"
        )
    return ErrorBound(count=int(number))


def _number(value: object) -> float | None:
    """The number ``value`` stands for (``"10%"`` is 0.1); None for none."""
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    percent = text.endswith("%")
    try:
        number = float(text.removesuffix("%").strip())
    except ValueError:
        return None
    if percent:
        return number / 100 if 0 <= number < 100 else math.nan
    return number


def exceeded(bound: ErrorBound | None, errors: int, rows: int) -> bool:
    """``errors`` of ``rows`` stored rows fail the evaluation under ``bound``."""
    if bound is None:  # the default: every stored row errored
        return rows > 0 and errors == rows
    if bound.count is not None:
        return errors > bound.count
    if bound.fraction is not None:
        return rows > 0 and errors / rows > bound.fraction
    return False
