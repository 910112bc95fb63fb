"""How values look in what dotevals prints: times, numbers, differences, long texts.

The terminal tables (:mod:`~dotevals._report.text`), the ``dotevals`` command
and the HTML report (:mod:`~dotevals._report.html`) format with these, so that
a value reads the same everywhere. Text from stored rows (model output, error
messages, score names) goes to a terminal through :func:`printable` only.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable
from datetime import datetime

__all__ = [
    "local_time",
    "number",
    "printable",
    "short_labels",
    "shorten",
    "shorten_left",
    "signed",
    "terminal_width",
]

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


def seconds(value: float | None) -> str | None:
    """A duration: ``45 us``, ``523 ms``, ``12.4 s``; None for None."""
    if value is None:
        return None
    if value < 1e-3:
        return f"{value * 1e6:.0f} us"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def usd(value: float | None) -> str | None:
    """An amount of US dollars: ``$0.0123``; None (no price) for None."""
    if value is None:
        return None
    return f"${value:.4f}" if value < 1000 else f"${value:,.2f}"


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


def shorten_left(text: str, limit: int) -> str:
    """``text``, cut to its last ``limit`` characters after an ellipsis when it is longer
    (a ``FILE::NAME`` keeps its name)."""
    return text if len(text) <= limit else ELLIPSIS + text[len(text) - limit + 1 :]


def terminal_width() -> int | None:
    """The width lines printed on standard output should fit: ``COLUMNS`` when it is
    set, else the terminal's; None when standard output is no terminal (a pipe or a
    file: lines are kept whole)."""
    return shutil.get_terminal_size((0, 0)).columns or None


def short_labels(names: Iterable[str]) -> dict[str, str]:
    """A shorter label for each stored evaluation name, for a table that must fit: its
    short name (``eval_math[gpt]``, see :func:`~dotevals.storage.naming.short_name`)
    where no other name has it, else ``FILE::NAME`` with as few of the file's leading
    directories as keep it apart from the others (``b/eval_x.py::eval_model``)."""
    from dotevals.storage.naming import short_name

    names = list(dict.fromkeys(names))
    shorts = {name: short_name(name) for name in names}
    counts: dict[str, int] = {}
    for short in shorts.values():
        counts[short] = counts.get(short, 0) + 1
    labels = {}
    for name in names:
        if counts[shorts[name]] == 1:
            labels[name] = shorts[name]
            continue
        path, sep, rest = name.partition("::")
        parts = path.split("/")
        others = [n for n in names if n != name and shorts[n] == shorts[name]]
        label = name
        for keep in range(1, len(parts) + 1):
            candidate = "/".join(parts[-keep:]) + sep + rest
            if not any(_ends_as(other, candidate) for other in others):
                label = candidate
                break
        labels[name] = label
    return labels


def _ends_as(name: str, label: str) -> bool:
    """``label`` could be read as ``name`` too (its path ends the same way)."""
    return name == label or name.endswith("/" + label)
