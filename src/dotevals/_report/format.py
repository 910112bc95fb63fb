"""How values look in what dotevals prints: times, numbers, differences, long texts.

The terminal tables (:mod:`~dotevals._report.text`), the ``dotevals`` command
and the HTML report (:mod:`~dotevals._report.html`) format with these, so that
a value reads the same everywhere. Text from stored rows (model output, error
messages, score names) goes to a terminal through :func:`printable` only.
"""

from __future__ import annotations

import math
from datetime import datetime

__all__ = ["local_time", "number", "printable", "shorten", "signed"]

#: The mark that ends a text cut short.
ELLIPSIS = "\u2026"

#: What a terminal would act on rather than show, as the escape shown instead: the
#: C0 and C1 control characters but newline and tab (ESC starts the sequences that
#: set the title or clear the screen, U+009B is a one-character CSI), the bidi
#: overrides and isolates that reorder text on screen, and lone surrogates (which
#: UTF-8 output cannot encode). The escapes are JSON's, so JSON text stays JSON.
_ESCAPES = {
    code: f"\\u{code:04x}"
    for code in (
        *range(0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        *range(0xD800, 0xE000),
    )
    if chr(code) not in "\n\t"
}


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


def printable(text: str) -> str:
    """``text`` as it may reach a terminal: control characters shown as their escapes
    (``\\u001b``, ``\\u0007``, as in JSON), newlines and tabs kept."""
    return text.translate(_ESCAPES)


def shorten(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
