"""Row errors: the trimmed traceback stored with a row's error, and tallies of errors.

A row's traceback is formatted where the row ran (in a worker too) and kept
as text, the way ``concurrent.futures`` keeps a remote traceback. The frames
of dotevals and its retry library that called the row are left out: what
remains is the row's own code.
"""

from __future__ import annotations

import os
import re
import traceback
from collections import Counter
from collections.abc import Iterable
from importlib.util import find_spec

from dotevals._declare.retry_policy import last_attempt_error
from dotevals.models import Record

__all__ = ["ErrorTally", "error_type", "group_by_type", "row_traceback"]

#: A longer traceback keeps its end: the innermost frames and the error itself.
MAX_TRACEBACK = 20_000
#: Distinct messages an ErrorTally keeps count of; any further ones count together.
MAX_MESSAGES = 1000
#: The longest type name a stored error is grouped under; a longer one is no type.
MAX_TYPE_NAME = 100
#: What an error that names no exception type is grouped under.
RESULT_ERROR = "Result.error"


def _directory(package: str) -> str:
    """Where ``package`` is installed, found without importing it."""
    spec = find_spec(package)
    assert spec is not None and spec.origin is not None
    return os.path.dirname(os.path.abspath(spec.origin)) + os.sep


#: Where the code that calls a row lives: dotevals, its retry library, the futures
#: and event loop a row's result passes through.
_MACHINERY = tuple(map(_directory, ("dotevals", "tenacity", "concurrent.futures", "asyncio")))
_TYPE_NAME = re.compile(r"[A-Za-z_][\w.]*")


def row_traceback(exc: BaseException) -> str | None:
    """``exc``'s traceback without the frames that called the row's code (or that
    interrupted it, as a timeout does); None when no frame of the row's own code is
    on it (an error dotevals made, such as a row that did not fit the columns)."""
    exc = last_attempt_error(exc)
    formatted = traceback.TracebackException.from_exception(exc)
    kept = False
    pending = [formatted]
    while pending:  # the exception and the ones it was raised from or while handling
        current = pending.pop()
        current.stack = traceback.StackSummary.from_list(_own_frames(list(current.stack)))
        kept = kept or bool(current.stack)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    if not kept:
        return None
    # a lone surrogate in a message would not go into a UTF-8 file or database
    text = "".join(formatted.format()).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_TRACEBACK else "...\n" + text[-MAX_TRACEBACK:]


def _own_frames(frames: list[traceback.FrameSummary]) -> list[traceback.FrameSummary]:
    """The frames between the machinery that called the row and any that interrupted it."""
    while frames and frames[0].filename.startswith(_MACHINERY):
        frames.pop(0)
    while frames and frames[-1].filename.startswith(_MACHINERY):
        frames.pop()
    return frames


def error_type(message: str) -> str:
    """The exception type a stored error names (``"ValueError: bad"`` -> ``"ValueError"``,
    ``"RuntimeError"`` -> itself); ``"Result.error"`` for other text."""
    head = message.partition(":")[0]
    return head if len(head) <= MAX_TYPE_NAME and _TYPE_NAME.fullmatch(head) else RESULT_ERROR


def _record_error_type(record: Record) -> str:
    """The type a failed record's error is grouped under: :func:`error_type`, except
    that the text an evaluation set in its Result names a type only before a colon
    (``Result(error="timeout")`` is a ``"Result.error"``, not a type of its own)."""
    message = error_message(record)
    if record.error is None and ":" not in message:
        return RESULT_ERROR
    return error_type(message)


def error_message(record: Record) -> str:
    """The error of a failed record as stored."""
    return record.error or record.result.error or ""


def group_by_type(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Failed records by the type of their error, the most frequent type first."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        if record.failed:
            groups.setdefault(_record_error_type(record), []).append(record)
    return dict(sorted(groups.items(), key=lambda item: -len(item[1])))


class ErrorTally:
    """The errors of the rows a run scored: how many, the first one, counts by exception
    type and by message."""

    def __init__(self) -> None:
        self.count = 0
        self.first: Record | None = None
        #: Counts by exception type (:func:`error_type`) of every error; past
        #: MAX_MESSAGES distinct types, further ones count only in ``count``.
        self.types: Counter[str] = Counter()
        #: Counts of the first MAX_MESSAGES distinct messages; later ones count only in
        #: ``count`` and ``types``.
        self.messages: Counter[str] = Counter()

    def add(self, record: Record) -> None:
        if not record.failed:
            return
        self.count += 1
        if self.first is None:
            self.first = record
        message = error_message(record)
        kind = error_type(message)
        if kind in self.types or len(self.types) < MAX_MESSAGES:
            self.types[kind] += 1
        if message in self.messages or len(self.messages) < MAX_MESSAGES:
            self.messages[message] += 1

    def by_type(self) -> list[tuple[str, int, list[tuple[str, int]]]]:
        """``(type, count, [(message, count), ...])`` per exception type, the most
        frequent type first, its messages most frequent first."""
        messages: dict[str, list[tuple[str, int]]] = {}
        for message, count in self.messages.most_common():
            messages.setdefault(error_type(message), []).append((message, count))
        return [(kind, count, messages.get(kind, [])) for kind, count in self.types.most_common()]
