"""Sync rows and fixtures run with no event loop running, as in plain pytest; a run
starts one only when something needs it (an async evaluation or fixture, workers).
Runs and loops in this process (in pytest sessions: e2e/test_event_loop.py)."""

from __future__ import annotations

import asyncio
import functools

import pytest

import dotevals
from dotevals import Runner, Score, foreach
from dotevals._run import loop_free
from dotevals.metrics import accuracy


def test_dotevals_run_of_a_sync_evaluation_runs_no_event_loop(tmp_path):
    @foreach("x", range(3))
    def eval_loops(x):
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()
        return Score("ok", asyncio.run(asyncio.sleep(0, result=x)) == x, [accuracy()])

    summary = dotevals.run(eval_loops, storage=f"json://{tmp_path}", progress=False)
    assert summary.errors == 0
    assert summary.metrics == {"ok": {"accuracy": 1.0}}


def test_runner_run_starts_an_event_loop_for_async_evaluations(tmp_path):
    @foreach("x", range(2))
    async def eval_awaits(x, offset):
        await asyncio.sleep(0)
        return Score("value", x + offset)

    runner = Runner(storage=f"json://{tmp_path}", progress=False)
    runner.run([functools.partial(eval_awaits, offset=10)])
    summary = runner.results["eval_awaits"]
    assert [r.result.scores[0].value for r in summary.records] == [10, 11]


def test_a_coroutine_that_waits_on_a_loop_is_an_error_without_one():
    async def waits():
        await asyncio.sleep(0)  # hands control to the loop once

    with pytest.raises(RuntimeError, match="waited on one"):
        loop_free.run(waits())


def test_a_coroutine_that_never_waits_runs_to_its_result_without_a_loop():
    async def double(x):
        return 2 * x

    async def add_doubles():
        return await double(1) + await double(2)

    assert loop_free.run(add_doubles()) == 6


def test_outside_the_loop_hides_the_running_loop_and_gives_it_back():
    async def main():
        loop = asyncio.get_running_loop()
        with loop_free.outside_the_loop():
            hidden = asyncio.run(asyncio.sleep(0, result="ran"))
        return hidden, asyncio.get_running_loop() is loop

    assert asyncio.run(main()) == ("ran", True)


def test_a_coroutine_runs_on_a_loop_of_its_own_also_inside_a_running_loop() -> None:
    async def answer() -> int:
        return 42

    async def main() -> int:
        return loop_free.on_a_loop_of_its_own(answer())

    assert loop_free.on_a_loop_of_its_own(answer()) == 42
    assert asyncio.run(main()) == 42


def test_a_loop_of_its_own_raises_the_coroutines_error_unchained() -> None:
    async def fail() -> None:
        raise ValueError("teardown failed")

    with pytest.raises(ValueError, match="teardown failed") as raised:
        loop_free.on_a_loop_of_its_own(fail())
    assert raised.value.__context__ is None
