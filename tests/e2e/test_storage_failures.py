"""Storage under attack from other processes: unencodable rows in a real run and its
resume, processes racing for a stale lock, a lock that is a directory, and experiment
names no storage can take."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pool_support import dead_pid
from pytest_runs import FAST
from stores import KINDS, storage_url

from dotevals.errors import ConfigurationError
from dotevals.storage import get_storage
from dotevals.storage.base import LockOwner
from dotevals.storage.json import safe_name
from dotevals.storage.writer import ExperimentStore

UNENCODABLE_EVAL = """
from dotevals import Score, foreach
from dotevals.metrics import accuracy


class BadRepr:
    def __repr__(self):
        raise ValueError("no repr for you")


def nested(depth):
    value = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@foreach("n", range(6))
def eval_odd(n):
    value = {1: nested(2000), 4: BadRepr()}.get(n, n % 2 == 0)
    return Score("even", value, [accuracy()])
"""


@pytest.mark.parametrize("kind", KINDS)
def test_unencodable_rows_in_a_run_and_its_resume(pytester: pytest.Pytester, kind: str):
    pytester.makepyfile(eval_odd=UNENCODABLE_EVAL)
    url = storage_url(kind, pytester.path)
    for _ in range(2):  # the resume runs the two errored rows again, and keeps the others
        result = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "odd")
        output = result.stdout.str() + result.stderr.str()
        assert "INTERNALERROR" not in output and "Traceback" not in output
        storage = get_storage(url)
        records = storage.load_records("odd", "eval_odd.py::eval_odd")
        storage.close()
        assert [r.item_id for r in records] == list(range(6))
        assert [r.item_id for r in records if r.error] == [1, 4]
        assert "RecursionError" in records[1].error and "no repr for you" in records[4].error
        assert [r.result.scores[0].value for r in records if not r.error] == [
            True,
            True,
            False,
            False,
        ]


# The json lock is atomic -----------------------------------------------------------
def _take_lock(url: str, start, hold, got) -> None:
    storage = get_storage(url)
    start.wait()
    got.put(storage.lock_experiment("exp", LockOwner.me()) is None)
    hold.wait()  # keep what was taken until every process has tried


@pytest.mark.parametrize("kind", KINDS)
def test_exactly_one_of_racing_processes_takes_a_stale_lock(tmp_path: Path, kind: str):
    context = multiprocessing.get_context("fork")
    racers = 4
    stale = LockOwner(dead_pid(), LockOwner.me().host, 0.0)
    for trial in range(20):
        url = storage_url(kind, tmp_path / f"trial{trial}")
        storage = get_storage(url)
        storage.create_experiment("exp")
        if kind == "json":
            lock = storage.root / safe_name("exp") / "run.lock"
            lock.write_text(json.dumps(stale.__dict__))
        else:
            storage.lock_experiment("exp", stale)
        storage.close()
        start, hold = context.Barrier(racers), context.Barrier(racers)
        got = context.Queue()
        processes = [
            context.Process(target=_take_lock, args=(url, start, hold, got)) for _ in range(racers)
        ]
        for process in processes:
            process.start()
        results = [got.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert sum(results) == 1, f"trial {trial}: {sum(results)} processes took the lock"


def test_a_lock_that_is_a_directory_is_one_clear_line(pytester: pytest.Pytester):
    pytester.makepyfile(eval_odd=UNENCODABLE_EVAL)
    url = storage_url("json", pytester.path)
    storage = get_storage(url)
    storage.create_experiment("odd")
    (storage.root / safe_name("odd") / "run.lock").mkdir()
    result = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "odd")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    lock = storage.root / safe_name("odd") / "run.lock"
    assert errors == [
        f"ERROR: cannot take the lock {lock}: Is a directory; "
        "delete it if no run of this experiment is going on"
    ]
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


# Names, missing storage, modes, NaN ---------------------------------------------------
@pytest.mark.parametrize(
    ("name", "says"),
    [("", "is blank"), ("   ", "is blank"), ("\udcff", "is not valid text")],
)
def test_bad_experiment_names_are_one_clear_line(pytester: pytest.Pytester, name, says):
    pytester.makepyfile(eval_odd=UNENCODABLE_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--no-progress", "--storage", url, "--experiment", name)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert says in error and "experiment name" in error
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert not (pytester.path / "store").exists()
    with pytest.raises(ConfigurationError, match=says):
        ExperimentStore(url, name)


def test_undecodable_experiment_name_from_the_command_line(tmp_path: Path):
    (tmp_path / "eval_odd.py").write_text(UNENCODABLE_EVAL)
    command = [sys.executable, "-m", "pytest", *FAST, "--no-progress", "--experiment"]
    done = subprocess.run(
        [*map(os.fsencode, command), b"\xff"], cwd=tmp_path, capture_output=True, timeout=120
    )
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "is not valid text" in output and "INTERNALERROR" not in output
