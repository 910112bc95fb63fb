"""Progress bars: one tqdm bar per running evaluation.

Bars are drawn on stderr only when it is a terminal and progress is wanted;
otherwise every call here does nothing.
"""

from __future__ import annotations

import sys
from typing import Protocol

from tqdm.auto import tqdm

from dotevals.models import Record


class ProgressFile(Protocol):
    """Where bars are drawn: a text file, or anything with its ``write`` and ``flush``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def progress_wanted(enabled: bool = True) -> bool:
    """True when bars should be drawn: enabled and stderr is a terminal."""
    return enabled and sys.stderr.isatty()


class ProgressBar:
    """Rows done / total, errors so far and rate of one evaluation."""

    def __init__(
        self, name: str, total: int | None, enabled: bool, file: ProgressFile | None = None
    ):
        self._errors = 0
        self._bar = tqdm(
            total=total,
            desc=name,
            unit="row",
            disable=not enabled,
            leave=False,
            dynamic_ncols=True,
            file=file or sys.stderr,
        )

    def update(self, record: Record) -> None:
        if record.failed:
            self._errors += 1
            self._bar.set_postfix_str(f"errors={self._errors}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
