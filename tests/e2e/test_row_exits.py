"""Rows that try to end the process scoring them, in real pytest sessions: each is
its own error, and the run, its workers and every other row go on."""

from __future__ import annotations

import pytest
from pytest_runs import run_pytest
from stores import stored_records

EXITING_EVAL = """
import os
import sys

from dotevals import Score, foreach


@foreach("n", range(30))
def eval_exiting(n):
    if n == 5:
        os._exit(1)
    if n == 12:
        sys.exit(3)
    if n == 20:
        try:
            os._exit(2)
        except BaseException:
            return Score("passed", True)
    if n == 25:
        exit("bye")
    return Score("passed", True, metadata={"pid": os.getpid()})
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_exits_are_their_rows_errors_and_the_workers_go_on(pytester, workers):
    pytester.makepyfile(eval_exiting=EXITING_EVAL)
    url = f"json://{pytester.path / 'store'}"
    result = run_pytest(
        pytester, "--workers", workers, "--storage", url, "--experiment", "x", timeout=120
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    records = stored_records(url, "x", "eval_exiting.py::eval_exiting")
    assert [r.item_id for r in records] == list(range(30))
    assert {r.item_id: r.error for r in records if r.failed} == {
        5: "RowExitError: the row called os._exit(1) (stopped: the run goes on)",
        12: "SystemExit: 3",
        20: "RowExitError: the row called os._exit(2) (stopped: the run goes on)",
        25: "SystemExit: bye",
    }
    # the process scoring the rows (the main one with --workers 1) never ended
    pids = {r.result.scores[0].metadata["pid"] for r in records if not r.failed}
    assert len(pids) <= int(workers)
    assert "4 of 30 rows run this time errored" in result.stdout.str()
