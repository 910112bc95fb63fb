"""Ctrl-C and SIGTERM in a real pytest run without workers: it stops at once, keeps every
finished row, marks the evaluation interrupted, tears fixtures down, and a rerun resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pool_support import spawned, wait_until
from pytest_runs import FAST
from stores import stored_records

from dotevals.storage import get_storage

CONFTEST = """
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def log(line):
    with (HERE / "events.log").open("a") as f:
        f.write(line + "\\n")


@pytest.fixture(scope="session")
def sess():
    log("setup sess")
    yield "S"
    log("teardown sess")


@pytest.fixture
def func(sess):
    log("setup func")
    yield sess
    log("teardown func")
"""

EVAL = """
import os
import time
from pathlib import Path

from dotevals import Score, foreach

DELAY = float(os.environ["ROW_DELAY"])


@foreach("n", range(2000))
def eval_slow(n, func):
    time.sleep(DELAY)
    with (Path(__file__).parent / "finished.log").open("a") as f:
        f.write(f"{n}\\n")
    return Score("v", n)


@foreach("n", range(5))
def eval_after(n, sess):
    return Score("v", n)
"""

SLOW = "eval_sig.py::eval_slow"
AFTER = "eval_sig.py::eval_after"


def command(url: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *FAST, "--experiment", "exp"] + [
        "--storage",
        url,
        "--no-progress",
        "eval_sig.py",
    ]


def stored(url: str, evaluation: str) -> list:
    return stored_records(url, "exp", evaluation)


def status(url: str, evaluation: str) -> str | None:
    storage = get_storage(url)
    try:
        info = storage.evaluation_info("exp", evaluation)
    finally:
        storage.close()
    return None if info is None else info.status


def wait_for_rows(
    url: str, proc: subprocess.Popen, rows: int, seconds: float = 60, evaluation: str = SLOW
) -> None:
    """Until storage holds ``rows`` rows of ``evaluation`` (it is scoring them)."""

    def enough() -> bool:
        try:
            return len(stored(url, evaluation)) >= rows
        except Exception:  # the experiment is not created yet
            return False

    wait_until(enough, seconds, f"{rows} stored rows of {evaluation}", proc)


@pytest.mark.parametrize(
    ("signum", "scheme"), [(signal.SIGINT, "json"), (signal.SIGTERM, "sqlite")], ids=["INT", "TERM"]
)
def test_a_signal_stops_a_sync_run_at_once_and_a_rerun_resumes(tmp_path: Path, signum, scheme):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "eval_sig.py").write_text(EVAL)
    url = f"json://{tmp_path / 'store'}" if scheme == "json" else f"sqlite://{tmp_path / 'f.db'}"
    env = {**os.environ, "ROW_DELAY": "0.05"}  # 100 s of rows: only a stop ends it in time
    with spawned(command(url), tmp_path, env=env) as proc:
        wait_for_rows(url, proc, 5)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    text = (out + err).decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "KeyboardInterrupt" in text
    for wrong in ("INTERNALERROR", "CancelledError", "not torn down properly"):
        assert wrong not in text, text

    events = (tmp_path / "events.log").read_text().splitlines()
    assert events == ["setup sess", "setup func", "teardown func", "teardown sess"]
    records = stored(url, SLOW)
    finished = (tmp_path / "finished.log").read_text().split()
    assert [r.item_id for r in records] == list(range(len(records)))
    assert len(finished) - 1 <= len(records) <= len(finished) < 2000  # the row cut short, at most
    assert not any(r.failed for r in records)
    assert status(url, SLOW) == "interrupted"
    assert status(url, AFTER) is None  # the run stopped: the next evaluation never started

    rerun = subprocess.run(
        command(url),
        cwd=tmp_path,
        env={**env, "ROW_DELAY": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    resumed = stored(url, SLOW)
    assert [r.item_id for r in resumed] == list(range(2000))
    assert [r.to_dict() for r in resumed[: len(records)]] == [r.to_dict() for r in records]
    assert status(url, SLOW) == status(url, AFTER) == "completed"
    assert len(stored(url, AFTER)) == 5


ASYNC_EVAL = """
import asyncio

from dotevals import Score, foreach


@foreach("n", range(2000))
async def eval_a(n, func):
    await asyncio.sleep(0.01 if n < 20 else 3600)
    return Score("v", n)


@foreach("n", range(2000))
async def eval_b(n, sess):
    await asyncio.sleep(0.01 if n < 20 else 3600)
    return Score("v", n)
"""


def test_ctrl_c_stops_concurrent_async_evaluations_and_tears_both_down(tmp_path: Path):
    """Async evaluations running side by side: both keep their finished rows, are marked
    interrupted, and the function fixture of the one set aside is torn down too."""
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "eval_sig.py").write_text(ASYNC_EVAL)
    url = f"json://{tmp_path / 'store'}"
    with spawned(command(url) + ["--concurrent"], tmp_path) as proc:
        wait_for_rows(url, proc, 20, evaluation="eval_sig.py::eval_a")
        wait_for_rows(url, proc, 20, evaluation="eval_sig.py::eval_b")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    text = (out + err).decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "INTERNALERROR" not in text
    events = (tmp_path / "events.log").read_text().splitlines()
    assert sorted(events) == ["setup func", "setup sess", "teardown func", "teardown sess"]
    assert events[-1] == "teardown sess"
    for name in ("eval_a", "eval_b"):
        assert [r.item_id for r in stored(url, f"eval_sig.py::{name}")] == list(range(20))
        assert status(url, f"eval_sig.py::{name}") == "interrupted"
