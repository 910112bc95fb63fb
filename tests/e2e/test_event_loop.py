"""Sync rows and fixtures run with no event loop running, as in plain pytest; a run
starts one only when something needs it (an async evaluation or fixture, workers).
Real pytest sessions, in subprocesses."""

from __future__ import annotations

import pytest
from pytest_runs import run_pytest
from stores import storage_url

from dotevals.storage import get_storage

#: A sync client, as many model SDKs have: each call runs an event loop of its own.
SYNC_CLIENT = """
import asyncio


async def _generate(x):
    await asyncio.sleep(0)
    return x * 2


def generate(x):
    return asyncio.run(_generate(x))
"""

CONFTEST = (
    SYNC_CLIENT
    + """
import pytest


@pytest.fixture
def doubled():
    return generate(21)  # a sync fixture that runs an event loop of its own


@pytest.fixture
async def prefix():
    await asyncio.sleep(0)
    return "p"
"""
)

SYNC_EVAL = """
from conftest import generate
from dotevals import Score, foreach


@foreach("x", range(3))
def eval_sync(x, doubled):
    return Score("ok", generate(x) == 2 * x and doubled == 42)
"""

ASYNC_EVAL = """
import asyncio

from dotevals import Score, foreach


@foreach("x", range(2))
async def eval_async(x):
    await asyncio.sleep(0)
    return Score("ok", True)
"""

SYNC_EVAL_WITH_ASYNC_FIXTURE = """
from conftest import generate
from dotevals import Score, foreach


@foreach("x", range(2))
def eval_prefixed(x, prefix):
    return Score("ok", prefix == "p" and generate(x) == 2 * x)
"""


def run_session(pytester: pytest.Pytester, *files: str) -> dict[str, list[object]]:
    """Run the eval files in one session; every stored row's error and value, by evaluation."""
    pytester.makeconftest(CONFTEST)
    names = {f"eval_{i}": text for i, text in enumerate(files)}
    pytester.makepyfile(**names)
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--storage", url, "--experiment", "e")
    assert result.ret == 0, result.stdout.str()
    storage = get_storage(url)
    return {
        name.split("::")[-1]: [r.error or r.result.scores[0].value for r in records]
        for name in storage.list_evaluations("e")
        for records in [storage.load_records("e", name)]
    }


def test_sync_rows_and_fixtures_may_run_an_event_loop_of_their_own(pytester: pytest.Pytester):
    assert run_session(pytester, SYNC_EVAL) == {"eval_sync": [True, True, True]}


def test_they_may_also_when_an_async_evaluation_runs_in_the_session(pytester: pytest.Pytester):
    assert run_session(pytester, ASYNC_EVAL, SYNC_EVAL) == {
        "eval_async": [True, True],
        "eval_sync": [True, True, True],
    }


def test_an_async_fixture_of_a_sync_evaluation_is_awaited_on_the_runs_loop(
    pytester: pytest.Pytester,
):
    assert run_session(pytester, SYNC_EVAL_WITH_ASYNC_FIXTURE) == {"eval_prefixed": [True, True]}
