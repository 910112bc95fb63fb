"""Progress bars: one tqdm bar per running evaluation.

Bars are drawn on stderr only when it is a terminal and progress is wanted;
otherwise every call here does nothing, and tqdm is not imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
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
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=name,
                unit="row",
                leave=False,
                dynamic_ncols=True,
                file=file or sys.stderr,
            )

    def update(self, record: Record) -> None:
        if self._bar is None:
            return
        if record.failed:
            self._errors += 1
            self._bar.set_postfix_str(f"errors={self._errors}", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
