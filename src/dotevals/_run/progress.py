"""Progress bars: one tqdm bar per running evaluation.

Bars are drawn on stderr only when it is a terminal and progress is wanted;
otherwise every call here does nothing, and tqdm is not imported.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dotevals.llm.context import CallTally
    from dotevals.models import Record


class ProgressFile(Protocol):
    """Where bars are drawn: a text file, or anything with its ``write`` and ``flush``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


def progress_wanted(enabled: bool = True) -> bool:
    """True when bars should be drawn: enabled and stderr is a terminal."""
    return enabled and sys.stderr.isatty()


class ProgressBar:
    """Rows done / total, errors so far and rate of one evaluation; for rows that call
    a model through dotevals' provider, the model's live concurrency limit and the 429
    answers so far (``limit=16 429s=3``), from what the rows' records report."""

    def __init__(
        self, name: str, total: int | None, enabled: bool, file: ProgressFile | None = None
    ):
        self._errors = 0
        self._calls: CallTally | None = None
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
        changed = False
        if record.failed:
            self._errors += 1
            changed = True
        if record.model_calls:
            if self._calls is None:
                from dotevals.llm.context import CallTally

                self._calls = CallTally()
            self._calls.add(record.model_calls)
            changed = True
        if changed:
            self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(1)

    def postfix(self) -> str:
        """``errors=2 limit=16 429s=3``: what is worth showing of the rows so far."""
        parts = [f"errors={self._errors}"] if self._errors else []
        calls = self._calls
        if calls is not None:
            if calls.limit is not None:
                parts.append(f"limit={calls.limit}")
            if calls.rate_limited:
                parts.append(f"429s={calls.rate_limited}")
        return " ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
