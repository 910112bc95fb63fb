"""How values look in what dotevals prints: times, numbers, differences, long texts.

The terminal tables (:mod:`~dotevals._report.text`), the ``dotevals`` command
and the HTML report (:mod:`~dotevals._report.html`) format with these, so that
a value reads the same everywhere.
"""

from __future__ import annotations

import math
from datetime import datetime

__all__ = ["local_time", "number", "shorten", "signed"]

#: The mark that ends a text cut short.
ELLIPSIS = "\u2026"


def local_time(timestamp: float | None, *, seconds: bool = True) -> str | None:
    """A Unix timestamp as local time (``2026-12-05 09:30:12``), None for None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp).strftime(
        "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    )


def number(value: float) -> str:
    """A metric's value: four decimals; ``nan``, ``inf`` and ``-inf`` as such (also an
    integer too large for a float); what is no number as its text."""
    return _decimals(value, "")


def signed(value: float) -> str:
    """``+0.2000`` / ``-0.0500``: a difference always shows its sign (``nan`` has none)."""
    return _decimals(value, "+")


def _decimals(value: float, sign: str) -> str:
    try:
        value = float(value)
    except OverflowError:  # an integer beyond floats
        value = math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return str(value)
    return "nan" if math.isnan(value) else f"{value:{sign}.4f}"


def shorten(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
