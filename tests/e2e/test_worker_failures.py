"""Real pools, end to end: what a failure around the workers must not cost.

Each test starts pytest in a subprocess with ``--workers``; the engine logic
itself is tested in-process in test_stream.py and test_worker_side.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import psutil
import pytest
from loky import BrokenProcessPool
from pool_support import wait_until
from pytest_runs import run_pytest
from stores import storage_url

from dotevals._engine.executors.local import LocalPool
from dotevals.storage import get_storage


def records(pytester: pytest.Pytester, experiment: str, evaluation: str) -> list:
    return get_storage(storage_url("json", pytester.path)).load_records(experiment, evaluation)


def test_workers_leave_when_the_main_process_is_killed_as_they_start(pytester):
    pytester.makepyfile(
        test_killer="""
import os
import signal
from pathlib import Path

import psutil


def test_kill_the_run():
    children = psutil.Process().children(recursive=True)
    Path("children.txt").write_text(" ".join(str(c.pid) for c in children))
    os.kill(os.getpid(), signal.SIGKILL)
""",
        eval_beside="""
from dotevals import Score, foreach


@foreach("n", range(4))
def eval_beside(n):
    return Score("v", n)
""",
    )
    result = run_pytest(pytester, "--workers", "2", "--storage", f"json://{pytester.path}/s")
    assert result.ret == -9, result.stdout.str()
    pids = [int(pid) for pid in (pytester.path / "children.txt").read_text().split()]
    children = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):  # gone already
            children.append(psutil.Process(pid))
    assert len(pids) >= 2  # the two workers, and the resource trackers once started
    _, alive = psutil.wait_procs(children, timeout=20)
    left = [" ".join(p.cmdline()) for p in alive]
    for process in alive:  # leave the machine clean for the tests that follow
        process.kill()
    assert left == []


ROWS_EVAL = """
import threading

import pytest

from dotevals import ForEach, Score, foreach


@foreach("n", range(6))
def eval_lock(n):
    return Score("s", threading.Lock() if n == 3 else n)


def broken_dataset():
    for n in range(20):
        if n == 10:
            raise OSError("the dataset's file went away")
        yield n


@foreach("n", broken_dataset())
def eval_broken(n):
    return Score("v", n)


@foreach("n", range(3))
def eval_patched(n, monkeypatch):
    return Score("v", n)
"""


def test_one_bad_result_a_failing_dataset_or_a_main_process_fixture_cost_only_themselves(
    pytester,
):
    pytester.makepyfile(eval_rows=ROWS_EVAL)
    url = f"json://{pytester.path / 'store'}"
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "r")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=1, errors=1)
    lock = records(pytester, "r", "eval_rows.py::eval_lock")
    assert [r.item_id for r in lock] == list(range(6))
    assert {r.item_id: r.error.split(" (")[0] for r in lock if r.failed} == {
        3: "TransferError: the row's result cannot be sent back from its worker process"
    }
    broken = records(pytester, "r", "eval_rows.py::eval_broken")
    assert [r.result.scores[0].value for r in broken] == list(range(10))
    assert "OSError: the dataset's file went away" in out
    assert "fixture 'monkeypatch' works on the main process only" in out
    assert "KeyError" not in out
    assert "ERROR at teardown" not in out


TIMEOUT_CONFTEST = """
import time

import pytest

from dotevals._engine import stream

stream.HANG_GRACE = 0.5  # the watchdog's margin, small: rows here take no time


@pytest.fixture(scope="session")
def slow_client():
    time.sleep(2)  # several times the rows' timeout
    yield "client"
"""

TIMEOUT_EVAL = """
from dotevals import ForEach, Score


@ForEach(timeout=0.3)("n", range(8))
def eval_quick(n, slow_client):
    return Score("v", n)
"""


def test_fixture_set_up_in_workers_does_not_count_against_row_timeouts(pytester):
    pytester.makeconftest(TIMEOUT_CONFTEST)
    pytester.makepyfile(eval_quick=TIMEOUT_EVAL)
    url = f"json://{pytester.path / 'store'}"
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "t")
    result.assert_outcomes(passed=1)
    stored = records(pytester, "t", "eval_quick.py::eval_quick")
    assert [r.error for r in stored] == [None] * 8
    assert [r.result.scores[0].value for r in stored] == list(range(8))


def test_one_worker_says_once_that_rows_run_in_the_main_process(pytester):
    pytester.makepyfile(
        eval_one="""
from dotevals import Score, foreach


@foreach("n", range(3))
def eval_one(n):
    return Score("v", n)
"""
    )
    result = run_pytest(pytester, "--workers", "1", "--storage", f"json://{pytester.path}/s")
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if line.startswith("dotevals: ")]
    assert lines == ["dotevals: sync evaluations run in the main process (1 worker requested)"]


def _say_pid_then(path: str, dies: bool) -> None:
    """In a worker: write its pid, then die, or wait to be killed with the pool."""
    Path(path).write_text(str(os.getpid()))
    if dies:
        os._exit(1)
    time.sleep(120)


def test_a_broken_local_pool_says_which_workers_were_still_alive(tmp_path):
    """What the stream blames a worker's death on: loky kills every worker of a
    broken pool, but the pool notes the survivors before it does."""
    waiting, dying = tmp_path / "waiting", tmp_path / "dying"

    async def main() -> set[int] | None:
        pool = LocalPool(2)
        try:
            alive = pool.submit(_say_pid_then, str(waiting), False)
            await asyncio.to_thread(wait_until, waiting.exists, 60, "the first worker")
            with pytest.raises(BrokenProcessPool):
                await pool.submit(_say_pid_then, str(dying), True)
            with pytest.raises(BrokenProcessPool):
                await alive
            return pool.survivors()
        finally:
            pool.shutdown(kill=True)

    survivors = asyncio.run(main())
    assert survivors is not None
    assert int(waiting.read_text()) in survivors
    assert int(dying.read_text()) not in survivors
