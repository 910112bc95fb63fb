"""When a chunk's rows start scoring: the worker marks it, the main process's watchdog reads it.

A chunk's deadline counts from the moment its worker starts scoring it, not
from when it was sent, so a worker still starting up or setting its fixtures
up is never taken for hung. Local workers share the file system with the main
process: a worker creates a file named for the chunk in a directory of the
run, which the main process removes at the end. The file holds the worker's
pid, so that when a worker dies the main process knows which chunk it was
running. A worker whose row runs past its timeout adds a note to it (see
:mod:`dotevals._engine.deadline`), which the watchdog reads to say what became
of a row that did not stop.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile

__all__ = ["StartMarks", "mark_started", "note"]


class StartMarks:
    """Main side: one directory of marks for one evaluation's chunks."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="dotevals-started-")
        self._numbers = itertools.count()

    def new(self) -> str:
        """The path a worker marks when it starts scoring the next chunk."""
        return os.path.join(self.directory, str(next(self._numbers)))

    @staticmethod
    def started(mark: str) -> bool:
        return os.path.exists(mark)

    @staticmethod
    def notes(mark: str) -> list[str]:
        """The words in the mark: the worker's pid, then its notes (none if it is gone)."""
        try:
            with open(mark, encoding="utf-8") as file:
                return file.read().split()
        except OSError:
            return []

    @classmethod
    def worker(cls, mark: str) -> int | None:
        """The pid of the worker that started the chunk (None: not started)."""
        words = cls.notes(mark)
        return int(words[0]) if words and words[0].isdigit() else None

    @staticmethod
    def forget(mark: str) -> None:
        """The chunk is over: its mark is not needed any more."""
        with contextlib.suppress(OSError):
            os.unlink(mark)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def mark_started(mark: str | None, pid: int | None = None) -> None:
    """Worker side: say the chunk's rows start now in this worker (``pid``: this
    process's unless given); a run that has ended is ignored."""
    note(mark, str(pid or os.getpid()))


def note(mark: str | None, word: str) -> None:
    """Worker side: add a word to the mark of the chunk being scored."""
    if mark is not None:
        with contextlib.suppress(OSError):
            fd = os.open(mark, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
            try:
                os.write(fd, f"{word}\n".encode())
            finally:
                os.close(fd)
