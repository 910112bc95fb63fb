"""An async row that swallows the cancellation of ``--row-timeout``, in a real pytest
session: stored as timed out, and the run ends."""

from __future__ import annotations

from pytest_runs import run_pytest
from stores import storage_url, stored_records

STUBBORN_EVAL = """
import asyncio
from pathlib import Path

from dotevals import Score, foreach
from dotevals.metrics import accuracy


@foreach("i", range(4))
async def eval_stubborn(i):
    if i == 1:
        try:
            while True:
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    pass  # goes on regardless
        finally:
            Path("closed").write_text("the row's finally ran")
    return Score("ok", True, [accuracy()])
"""


def test_an_async_row_that_swallows_its_cancellation_is_stored_as_timed_out(pytester):
    pytester.makepyfile(eval_stubborn=STUBBORN_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(
        pytester, "--row-timeout", "0.5", "--storage", url, "--experiment", "e", timeout=60
    )
    result.assert_outcomes(passed=1)
    stored = stored_records(url, "e", "eval_stubborn.py::eval_stubborn")
    assert [r.error for r in stored] == [
        None,
        "RowTimeoutError: the row ran longer than its 0.5 s timeout",
        None,
        None,
    ]
    assert (pytester.path / "closed").read_text() == "the row's finally ran"
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
