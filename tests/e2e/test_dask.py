"""The Dask executor (``--executor dask://HOST:PORT``), against a real local cluster.

One ``distributed.LocalCluster`` (two worker processes with one thread each,
on loopback) serves the whole module; every run is a real pytest session in a
subprocess (``runpytest_subprocess``) or a script under ``sys.executable``
that reaches the cluster through its scheduler address. Results go to real
storage under ``pytester.path`` and are read back with ``get_storage``.

A ``conftest.py`` writes the pid of the pytest process (the main process) to
``main.pid``; rows record ``os.getpid()`` in their score metadata, and the
test's own ``distributed.Client`` asks the cluster for its workers' pids
(``client.run(os.getpid)``), which says where each row ran. Nothing here
asserts timings.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator

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
    comparable,
    main_pid,
    mixed_eval,
    pids,
    rows_held,
    wait_until,
)
from pytest_output import section_of
from pytest_runs import FAST, run_pytest
from stores import raw_item_ids, storage_url

from dotevals import Runner
from dotevals.errors import ConfigurationError
from dotevals.storage import get_storage

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

# The scheduler's HTTP server (on loopback) moves off port 8787 when another cluster
# (another xdist worker's) holds it, and says so.
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")


class Cluster:
    """The module's cluster, as the tests see it."""

    def __init__(self, cluster, client):
        self.cluster = cluster
        self.client = client
        # tcp://127.0.0.1:PORT -> dask://127.0.0.1:PORT
        self.url = "dask://" + cluster.scheduler_address.removeprefix("tcp://")

    def pids(self) -> set[int]:
        """The worker processes' pids, once both workers are up (a lost one is restarted)."""
        self.client.wait_for_workers(2, timeout=60)
        return set(self.client.run(os.getpid).values())


#: Dask retries a task whose worker died up to allowed-failures times: each retry of a
#: row that kills its worker costs a worker restart. Two more settings keep the
#: lost-worker test short and the cluster whole:
#: - the scheduler gathers a chunk's result from the worker that held it; when that
#:   worker has just died, it retries the connection for timeouts.connect (30 s by
#:   default) before the result is recomputed elsewhere, and the run stalls that long;
#: - a LocalCluster closes the nanny of a worker still missing lost-worker-timeout
#:   (15 s) after it died: when that check falls while the nanny restarts the worker
#:   once more, the cluster stays without that worker for good.
CLUSTER_CONFIG = {
    "distributed.scheduler.allowed-failures": 1,
    "distributed.comm.timeouts.connect": "5s",
    "distributed.deploy.lost-worker-timeout": "1h",
}


@pytest.fixture(scope="module")
def cluster():
    with dask.config.set(CLUSTER_CONFIG):  # read as events happen: for the module's life
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = distributed.Client(local)
        try:
            yield Cluster(local, client)
        finally:
            client.close()
            local.close()


def on_dask(pytester: pytest.Pytester, cluster: Cluster, *args: str) -> pytest.RunResult:
    return run_pytest(pytester, "--executor", cluster.url, *args)


def header(cluster: Cluster) -> str:
    return (
        f"dotevals: 2 workers on {cluster.url} "
        "(2 worker processes, 2 threads, as the cluster reports)"
    )


# ---------------------------------------------------------------------------
# Same results as the local pool; the work happens in the Dask workers
# ---------------------------------------------------------------------------

SAME_RESULTS_EVAL = """
import hashlib
import os

from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy


def work(n):
    digest = hashlib.sha256(str(n).encode()).digest()
    for _ in range(2000):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()[:12]


@foreach("n,label", [(i, i % 3) for i in range(120)])
def eval_listed(n, label):
    if n % 17 == 4:
        raise ValueError(f"row {n} is odd")
    return Result(
        Score("even", n % 2 == 0, [accuracy()], {"pid": os.getpid(), "digest": work(n)}),
        Score("label", label == 0, [accuracy()]),
        prompt=f"q{n}",
    )


def generated():
    for i in range(80):
        yield {"text": "x" * (i % 7), "n": i}


@foreach("text,n", generated())
def eval_generated(text, n):
    return Score("long", len(text) > 3, [accuracy()], {"pid": os.getpid(), "digest": work(n)})
"""


def test_same_results_as_the_local_pool_and_rows_run_in_the_dask_workers(pytester, cluster):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_same=SAME_RESULTS_EVAL)
    url = storage_url("json", pytester.path)
    storage = get_storage(url)
    names = ["eval_same.py::eval_listed", "eval_same.py::eval_generated"]
    workers = cluster.pids()

    runs = {}
    for experiment, options in (
        ("dask", ("--executor", cluster.url)),
        ("local", ("--workers", "2")),
    ):
        started = time.monotonic()
        result = run_pytest(pytester, *options, "--storage", url, "--experiment", experiment)
        print(f"{experiment}: {time.monotonic() - started:.1f}s")
        result.assert_outcomes(passed=2)
        runs[experiment] = {
            "out": result.stdout.str(),
            "main": main_pid(pytester),
            "records": {name: storage.load_records(experiment, name) for name in names},
            "raw": {name: raw_item_ids(url, experiment, name) for name in names},
            "infos": {name: storage.evaluation_info(experiment, name) for name in names},
        }

    assert header(cluster) in runs["dask"]["out"].splitlines()
    assert "dotevals: 2 workers (as requested)" in runs["local"]["out"]

    dask_run, local_run = runs["dask"], runs["local"]
    assert [len(local_run["records"][n]) for n in names] == [120, 80]
    listed = local_run["records"]["eval_same.py::eval_listed"]
    assert [r.item_id for r in listed if r.error] == [4, 21, 38, 55, 72, 89, 106]
    assert listed[4].error == "ValueError: row 4 is odd"
    for name in names:
        assert [comparable(r) for r in dask_run["records"][name]] == [
            comparable(r) for r in local_run["records"][name]
        ], name
        # written in dataset order, each row once, on either executor
        assert dask_run["raw"][name] == local_run["raw"][name]
        assert dask_run["raw"][name] == [r.item_id for r in local_run["records"][name]]
        assert dask_run["infos"][name].metrics == local_run["infos"][name].metrics, name
        for key in ("rows", "errors"):
            assert dask_run["infos"][name].metadata[key] == local_run["infos"][name].metadata[key]
        assert dask_run["infos"][name].status == "completed"

    # on Dask the rows ran in the cluster's worker processes, not in pytest's
    ran = set().union(*(pids(dask_run["records"][name]) for name in names))
    assert dask_run["main"] not in ran
    assert ran == workers, (ran, workers)
    assert cluster.pids() == workers  # no worker was lost or restarted
    assert not pids(local_run["records"]["eval_same.py::eval_listed"]) & workers


# ---------------------------------------------------------------------------
# Fixtures live in each Dask worker and are torn down when the run ends
# ---------------------------------------------------------------------------

FIXTURE_CONFTEST = (
    EVENTS_CONFTEST
    + """
@pytest.fixture
async def afix():
    await asyncio.sleep(0)
    log(f"setup afix {os.getpid()}")
    return "A"
"""
)

FIXTURE_EVAL = """
import os
import time

from dotevals import Score, foreach


@foreach("n", range(40))
def eval_a(n, sess, mod, afix):
    time.sleep(0.002)
    return Score("v", True, metadata={"pid": os.getpid(), "values": [sess, mod, afix]})


@foreach("n", range(40))
def eval_b(n, sess):
    time.sleep(0.002)
    return Score("v", True, metadata={"pid": os.getpid(), "values": [sess]})
"""


def parse_events(pytester: pytest.Pytester) -> tuple[list[list[str]], str]:
    """The fixture events of the run (``[kind, fixture, pid]``) and its last line."""
    path = pytester.path / "events.log"
    lines = path.read_text().splitlines()
    path.unlink()
    return [line.split() for line in lines[:-1]], lines[-1]


def test_fixtures_are_created_in_each_dask_worker_and_torn_down_when_the_run_ends(
    pytester, cluster
):
    pytester.makeconftest(FIXTURE_CONFTEST)
    pytester.makepyfile(eval_fixtures=FIXTURE_EVAL)
    url = storage_url("json", pytester.path)
    storage = get_storage(url)
    workers = cluster.pids()

    def count(events, kind, fixture):
        return Counter(int(e[2]) for e in events if e[0] == kind and e[1] == fixture)

    setups_by_run = []
    for experiment in ("fx1", "fx2"):
        result = on_dask(pytester, cluster, "--storage", url, "--experiment", experiment)
        result.assert_outcomes(passed=2)
        main = main_pid(pytester)
        records = {
            name: storage.load_records(experiment, f"eval_fixtures.py::{name}")
            for name in ("eval_a", "eval_b")
        }
        assert [len(r) for r in records.values()] == [40, 40]
        assert not any(r.error for rs in records.values() for r in rs)
        values = {
            name: {tuple(s.metadata["values"]) for r in rs for s in r.result.scores}
            for name, rs in records.items()
        }
        assert values == {"eval_a": {("S", "M:S", "A")}, "eval_b": {("S",)}}
        assert main not in pids(records["eval_a"] + records["eval_b"])

        events, last = parse_events(pytester)
        assert last == f"sessionfinish main {main}"  # torn down before the run ended
        assert all(int(e[2]) != main for e in events), "a user fixture ran in pytest's process"
        assert {int(e[2]) for e in events} <= workers
        for fixture in ("sess", "mod"):
            setups = count(events, "setup", fixture)
            assert setups, fixture
            assert set(setups.values()) == {1}, (fixture, setups)  # at most once per worker
            assert count(events, "teardown", fixture) == setups, fixture  # each torn down once
        assert set(count(events, "setup", "afix").values()) == {1}
        for pid in count(events, "setup", "sess"):  # newest first, the session fixture last
            mine = [e[:2] for e in events if int(e[2]) == pid and e[0] == "teardown"]
            assert mine[-1] == ["teardown", "sess"], mine
        setups_by_run.append(count(events, "setup", "sess"))

    # the workers outlived the first run; its teardown made the second one set up afresh
    assert cluster.pids() == workers
    assert set(setups_by_run[0]) & set(setups_by_run[1]), setups_by_run


ASYNC_YIELD_CONFTEST = """
import asyncio
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def log(line):
    with (HERE / "events.log").open("a") as f:
        f.write(line + "\\n")


@pytest.fixture
async def agen():
    await asyncio.sleep(0)
    log(f"setup agen {os.getpid()}")
    yield "G"
    await asyncio.sleep(0)
    log(f"teardown agen {os.getpid()}")
"""


def test_async_yield_fixture_is_torn_down_in_the_dask_worker(pytester, cluster):
    pytester.makeconftest(ASYNC_YIELD_CONFTEST)
    pytester.makepyfile(
        eval_agen="""
        from dotevals import Score, foreach

        @foreach("n", range(10))
        def eval_agen(n, agen):
            return Score("v", agen)
        """
    )
    result = on_dask(pytester, cluster, "--storage", storage_url("json", pytester.path))
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    events = [line.split() for line in (pytester.path / "events.log").read_text().splitlines()]
    setups = Counter(e[2] for e in events if e[0] == "setup")
    assert setups and Counter(e[2] for e in events if e[0] == "teardown") == setups


def test_fixture_errors_on_dask_workers_are_errors_of_their_items(pytester, cluster):
    """A fixture that raises in a Dask worker, and a session fixture whose teardown
    raises there: errors of their items, with the conftest's line, and the run fails."""
    conftest = pytester.makeconftest(FAILING_FIXTURES_CONFTEST)
    pytester.makepyfile(eval_failing=FAILING_FIXTURES_EVAL)
    result = on_dask(pytester, cluster, "--storage", storage_url("json", pytester.path))
    result.assert_outcomes(passed=1, errors=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = conftest.read_text().splitlines()
    for title, code in (
        ("ERROR at setup of eval_broken", 'return answers["missing"]'),
        ("ERROR at teardown of eval_teardown", 'raise RuntimeError("teardown failed")'),
    ):
        section = section_of(result, title)
        line = next(n for n, text in enumerate(lines, 1) if text.strip() == code)
        assert f'File "{conftest}", line {line}, in ' in section and code in section, section


# ---------------------------------------------------------------------------
# What travels to the Dask workers
# ---------------------------------------------------------------------------


SCRIPT = """
import json
import os
import sys

import dotevals
from dotevals import Score, foreach
from dotevals.metrics import accuracy


def make(limit):
    below = lambda n: n < limit  # noqa: E731

    @foreach("n", range(30))
    def eval_script(n):
        if n == 7:
            raise ValueError("seven")
        return Score("small", below(n), [accuracy()], {"pid": os.getpid()})

    return eval_script


summary = dotevals.run(
    make(15), executor=sys.argv[1], storage=sys.argv[2], experiment="script", progress=False
)
print(json.dumps({"rows": summary.rows, "errors": summary.errors, "summary": summary.metrics,
                  "main": os.getpid()}))
"""


def test_eval_files_outside_packages_closures_and_scripts_reach_the_dask_workers(pytester, cluster):
    pytester.makeconftest(PID_CONFTEST)
    evals = pytester.mkdir("my-evals")  # not a package, not an importable name
    (evals / "conftest.py").write_text(textwrap.dedent(SHIPPED_CONFTEST))
    (evals / "eval_shipped.py").write_text(textwrap.dedent(SHIPPED_EVAL))
    url = storage_url("json", pytester.path)
    workers = cluster.pids()
    result = on_dask(pytester, cluster, "my-evals", "--storage", url, "--experiment", "ship")
    result.assert_outcomes(passed=2)
    storage = get_storage(url)
    made = storage.load_records("ship", "my-evals/eval_shipped.py::eval_factory")
    assert [r.result.scores[0].value for r in made] == [3 * (2 * n + 105) for n in range(20)]
    locked = storage.load_records("ship", "my-evals/eval_shipped.py::eval_lock")
    assert [r.result.scores[0].value for r in locked] == [
        [v * n - 1 for v in (1, 2, 3)] for n in range(10)
    ]
    assert not any(r.error for r in made + locked)
    assert pids(made + locked) <= workers

    # dotevals.run(..., executor="dask://...") from a script; its closure travels too
    script = pytester.path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), cluster.url, url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=pytester.path,
    )
    assert done.returncode == 0, done.stderr
    assert header(cluster) in done.stderr.splitlines()
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["rows"] == 30 and out["errors"] == 1
    assert out["summary"] == {"small": {"accuracy": 14 / 30}}  # 0..14 minus the error row
    records = storage.load_records("script", "eval_script")
    assert [r.item_id for r in records] == list(range(30))
    assert records[7].error == "ValueError: seven"
    assert out["main"] not in pids(records) and pids(records) <= workers


def test_helper_module_next_to_the_eval_file_reaches_the_dask_workers(pytester, cluster):
    pytester.makepyfile(
        textwrap_helper="def twice(x):\n    return 2 * x\n",
        eval_helper="""
        from textwrap_helper import twice

        from dotevals import Score, foreach

        @foreach("n", range(6))
        def eval_helper(n):
            return Score("v", twice(n))
        """,
    )
    url = storage_url("json", pytester.path)
    result = on_dask(pytester, cluster, "--storage", url, "--experiment", "helper")
    result.assert_outcomes(passed=1)
    records = get_storage(url).load_records("helper", "eval_helper.py::eval_helper")
    assert [r.result.scores[0].value for r in records] == [2 * n for n in range(6)]


# ---------------------------------------------------------------------------
# Resume, --samples and retries on Dask
# ---------------------------------------------------------------------------

RESUME_EVAL = (
    RETRIED_EVAL
    + """    return Score("v", True, metadata={"pid": os.getpid()})
"""
)


def test_resume_samples_and_retries_on_dask(pytester, cluster):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_resume=RESUME_EVAL)
    url = storage_url("json", pytester.path)
    storage = get_storage(url)
    many, flaky = "eval_resume.py::eval_many", "eval_resume.py::eval_flaky"
    attempts = pytester.path / "attempts.log"
    workers = cluster.pids()
    options = ("--samples", "10", "--storage", url, "--experiment", "res")

    first = on_dask(pytester, cluster, *options)
    first.assert_outcomes(passed=2)
    before = storage.load_records("res", many)
    assert [r.item_id for r in before] == list(range(10))
    assert pids(before) <= workers

    # the ConnectionError row was tried 3 times, in one Dask worker, then stored as an error
    tries = [int(pid) for pid in attempts.read_text().split()]
    assert len(tries) == 3 and len(set(tries)) == 1 and tries[0] in workers
    errors = {r.item_id: r.error for r in storage.load_records("res", flaky)}
    assert errors == {0: None, 1: "ConnectionError: server went away", 2: None, 3: None}

    second = on_dask(pytester, cluster, *options)
    # eval_flaky ran only its errored row again, and it errored again: as in the first
    # run, 1 of its 4 stored rows errored, and it passes
    second.assert_outcomes(passed=2)
    assert "eval_flaky: 1 errored row ran again (not counted in new): 1 errored again" in (
        second.stdout.str()
    )
    after = storage.load_records("res", many)
    assert [r.item_id for r in after] == list(range(20))
    assert [r.result.scores[0].value for r in after] == list(range(20))
    assert [r.timestamp for r in after[:10]] == [r.timestamp for r in before]  # kept as they were
    assert raw_item_ids(url, "res", many) == list(range(20))  # the second run added 10..19
    assert pids(after) <= workers
    # resume retried the errored row only, 3 more attempts
    assert len(attempts.read_text().split()) == 6
    assert raw_item_ids(url, "res", flaky) == [0, 1, 2, 3, 1]


# ---------------------------------------------------------------------------
# Async evaluations stay on the main process's loop
# ---------------------------------------------------------------------------

MIXED_EVAL = mixed_eval(sync_rows=30, sync_seconds=0.003)


def test_async_evaluations_run_on_the_main_loop_and_sync_ones_on_dask(pytester, cluster):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makeini(f"[pytest]\ndotevals_executor = {cluster.url}\n")  # from the ini file
    pytester.makepyfile(eval_mixed=MIXED_EVAL)
    url = storage_url("json", pytester.path)
    workers = cluster.pids()
    result = run_pytest(pytester, "--storage", url, "--experiment", "mix")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([header(cluster)])
    main = main_pid(pytester)
    storage = get_storage(url)
    in_main = storage.load_records("mix", "eval_mixed.py::eval_async")
    assert len(in_main) == 20 and not any(r.error for r in in_main)
    assert pids(in_main) == {main}
    assert {s.metadata["fixture_pid"] for r in in_main for s in r.result.scores} == {main}
    assert all(s.value is True for r in in_main for s in r.result.scores)
    on_cluster = storage.load_records("mix", "eval_mixed.py::eval_sync")
    assert [r.result.scores[0].value for r in on_cluster] == list(range(30))
    assert pids(on_cluster) <= workers and main not in pids(on_cluster)


# ---------------------------------------------------------------------------
# A row that kills its Dask worker
# ---------------------------------------------------------------------------

DEADLY_EVAL = """
import os
import posix  # posix._exit ends the worker: a row's os._exit is stopped
from pathlib import Path

from dotevals import Score, foreach

HERE = Path(__file__).parent


@foreach("n", range(40))
def eval_deadly(n):
    with (HERE / "ran.log").open("a") as f:
        f.write(f"{n}\\n")
    if n == 13:
        posix._exit(3)
    return Score("v", n, metadata={"pid": os.getpid()})
"""


def test_a_row_that_kills_its_dask_worker_is_that_rows_error(pytester, cluster):
    pytester.makeconftest(PID_CONFTEST)
    pytester.makepyfile(eval_deadly=DEADLY_EVAL)
    url = storage_url("json", pytester.path)
    before = cluster.pids()
    started = time.monotonic()
    result = on_dask(pytester, cluster, "--storage", url, "--experiment", "dead")
    took = time.monotonic() - started
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)

    name = "eval_deadly.py::eval_deadly"
    records = get_storage(url).load_records("dead", name)
    assert [r.item_id for r in records] == list(range(40))
    assert raw_item_ids(url, "dead", name) == list(range(40))  # each row stored once, in order
    dead = records[13]
    assert dead.error.startswith("WorkerDiedError: the worker process scoring this row died")
    assert "Dask" in dead.error
    others = [r for r in records if r.item_id != 13]
    assert not any(r.error for r in others)
    assert [r.result.scores[0].value for r in others] == [n for n in range(40) if n != 13]
    assert main_pid(pytester) not in pids(others)

    ran = Counter(int(n) for n in (pytester.path / "ran.log").read_text().split())
    assert set(ran) == set(range(40))
    after = cluster.pids()  # the cluster replaced the workers it lost
    print(
        f"lost-worker run took {took:.1f}s; row 13 ran {ran[13]} times; "
        f"{sum(1 for n, c in ran.items() if n != 13 and c > 1)} other rows ran again "
        f"after the loss; {len(before - after)} of the workers were replaced"
    )
    assert ran[13] >= 2  # Dask retried it (allowed-failures=1), then it ran alone once more
    assert before != after


# ---------------------------------------------------------------------------
# A cluster that goes away: a scheduler of its own, in a process a test kills
# ---------------------------------------------------------------------------

#: A scheduler and one worker without a nanny (two threads), in one process: killing
#: it kills the scheduler; restarting the worker shuts it down for good.
OWN_CLUSTER = """
import sys
import time
from pathlib import Path

import distributed

if __name__ == "__main__":
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
        host="127.0.0.1", dashboard_address=None,
    )
    Path(sys.argv[1]).write_text(cluster.scheduler_address)
    while True:
        time.sleep(3600)
"""


@contextlib.contextmanager
def own_cluster(directory) -> Iterator[tuple[str, subprocess.Popen]]:
    """The ``dask://`` address of a cluster in a process of its own, and that process."""
    (directory / "own_cluster.py").write_text(OWN_CLUSTER)
    address = directory / "scheduler.address"
    proc = subprocess.Popen(
        [sys.executable, "own_cluster.py", str(address)],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: address.exists() and address.read_text(), 60, "the scheduler", proc)
        yield "dask://" + address.read_text().removeprefix("tcp://"), proc
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def pytest_on(address: str, directory, *args: str, **env: str) -> Iterator[subprocess.Popen]:
    """pytest running on the cluster at ``address``, killed at the end if still running."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *FAST, "--no-progress", "--executor", address, *args],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTEST_ADDOPTS": "", **env},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stopped_with_one_line(proc: subprocess.Popen, start: str, timeout: float) -> None:
    """The run fails its evaluation with one line starting with ``start``, no traceback."""
    out, _ = proc.communicate(timeout=timeout)
    output = out.decode()
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "INTERNALERROR" not in output and "Traceback" not in output, output
    lines = [text for text in output.splitlines() if text.startswith(start)]
    assert len(lines) == 1, output


def test_scheduler_killed_mid_run_is_one_line_and_the_run_resumes(pytester, cluster):
    """kill -9 of the scheduler while rows wait: one line, the finished rows are kept, and
    a rerun on another cluster stores every row once."""
    pytester.makepyfile(eval_gated=GATED_EVAL)
    url = storage_url("json", pytester.path)
    name = "eval_gated.py::eval_gated"
    with (
        own_cluster(pytester.path) as (address, scheduler),
        pytest_on(address, pytester.path, "--storage", url, "--experiment", "lost") as run,
    ):
        wait_until(
            lambda: (pytester.path / "blocked").exists() and rows_held(url),
            60,
            "stored rows and a waiting row",
            run,
        )
        scheduler.kill()
        stopped_with_one_line(
            run,
            f"the connection to the Dask scheduler at {address} was lost mid-run; the rows "
            "finished so far are stored: once the cluster works again, rerun the same "
            "experiment to resume",
            timeout=60,
        )
    kept = raw_item_ids(url, "lost", name)
    assert kept == list(range(len(kept))) and 0 < len(kept) <= 8

    (pytester.path / "gate").touch()
    result = on_dask(pytester, cluster, "--storage", url, "--experiment", "lost")
    result.assert_outcomes(passed=1)
    assert sorted(raw_item_ids(url, "lost", name)) == list(range(40))  # each row once


HUNG_EVAL = """
import time

from dotevals import ForEach, Score
from dotevals.concurrency import Batch


@ForEach(timeout=0.5, concurrency=Batch(1))("n", range(12))
def eval_hung(n):
    if n == 5:
        time.sleep(30)
    return Score("v", n)
"""


def test_workers_that_do_not_come_back_after_a_hung_row_are_one_line(pytester):
    """A hung row makes dotevals restart the cluster's workers; a worker without a nanny
    does not come back, the restart times out (after 4 connect timeouts, 1 s here), and
    the run stops with one line, the hung row stored with its error, finished rows kept
    (also those after it: a hung row does not hold the other workers)."""
    pytester.makepyfile(eval_hung=HUNG_EVAL)
    url = storage_url("json", pytester.path)
    name = "eval_hung.py::eval_hung"
    options = ["--storage", url, "--experiment", "hung"]
    with (
        own_cluster(pytester.path) as (address, _),
        pytest_on(
            address, pytester.path, *options, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s"
        ) as run,
    ):
        stopped_with_one_line(
            run,
            f"the Dask cluster at {address} did not bring its workers back after restarting "
            "them to stop a hung row (TimeoutError",
            timeout=90,
        )
    records = get_storage(url).load_records("hung", name)
    # the rows after the hung one that finished meanwhile are kept too, in order
    assert [r.item_id for r in records] == list(range(len(records))) and len(records) >= 6
    assert records[5].error.startswith("RowTimeoutError: the row ran longer than its 0.5 s")
    assert not any(r.error for r in records if r.item_id != 5)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

SMALL_EVAL = """
from dotevals import Score, foreach

@foreach("n", range(2))
def eval_small(n):
    return Score("v", n)
"""


@contextlib.contextmanager
def listener(kind: str) -> Iterator[int]:
    """A port on loopback where no Dask scheduler answers: nothing, or another server."""
    if kind == "nothing listens":
        with socket.socket() as probe:  # a free port, closed again
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        yield port
        return
    if kind == "a server that hangs up":
        server = socketserver.TCPServer(("127.0.0.1", 0), HangUpHandler)
    elif kind == "an HTTP server":
        server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    else:  # accepts connections and never says a word
        server = socketserver.TCPServer(("127.0.0.1", 0), SilentHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class HangUpHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(1)  # the client is connected and speaking: hang up


class SilentHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while self.request.recv(4096):  # until the client goes away
            pass


def stopped_at_once(result: pytest.RunResult, line: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    result.stderr.fnmatch_lines([f"ERROR: {line}"])
    assert len([text for text in output.splitlines() if "Dask scheduler" in text]) == 1


def test_unreachable_scheduler_is_one_clear_message(pytester, monkeypatch):
    """Nothing listens: the run gives up after the connect timeout, here Dask's own
    setting from the environment."""
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    pytester.makepyfile(eval_small=SMALL_EVAL)
    with listener("nothing listens") as port:
        address = f"dask://127.0.0.1:{port}"
        result = run_pytest(pytester, "--executor", address, timeout=60)
    stopped_at_once(
        result,
        f"cannot reach the Dask scheduler at {address} (* 1 s); start it with "
        "'dask scheduler' and its workers with 'dask worker ADDRESS'",
    )


@pytest.mark.parametrize("kind", ["a silent server", "an HTTP server", "a server that hangs up"])
def test_port_that_is_not_a_dask_scheduler_is_one_clear_message(pytester, kind):
    """A server that takes the connection but is no Dask scheduler: one line within the
    connect timeout (Dask's setting, set in this process), never a hang."""
    pytester.makepyfile(eval_small=SMALL_EVAL)
    with listener(kind) as port, dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        address = f"dask://127.0.0.1:{port}"
        result = pytester.runpytest(
            *FAST, "--executor", address, "--storage", storage_url("json", pytester.path)
        )
    if kind == "a server that hangs up":
        line = f"{address} is not a Dask scheduler: it closed the connection at Dask's handshake*"
    else:
        line = f"cannot reach the Dask scheduler at {address} (* 1 s); start it with 'dask sched*"
    stopped_at_once(result, line)


@pytest.mark.parametrize("value", ["bogus", "dask://127.0.0.1", "tcp://127.0.0.1:8786"])
def test_bad_executor_is_a_usage_error_naming_the_accepted_forms(pytester, value):
    pytester.makepyfile(eval_small=SMALL_EVAL)
    result = pytester.runpytest(
        *FAST, "--executor", value, "--storage", storage_url("json", pytester.path)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: executor must be 'local' or 'dask://HOST:PORT' (a Dask scheduler), got '{value}'"]
    )
    with pytest.raises(ConfigurationError, match="'local' or 'dask://HOST:PORT'"):
        Runner(executor=value, storage=storage_url("json", pytester.path))


def test_bad_executor_in_the_ini_file_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\ndotevals_executor = bogus\n")
    pytester.makepyfile(eval_small=SMALL_EVAL)
    result = pytester.runpytest(*FAST, "--storage", storage_url("json", pytester.path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: dotevals_executor in the ini file: executor must be 'local' or 'dask://*"]
    )


def test_port_that_is_not_a_number_is_a_usage_error(pytester):
    pytester.makepyfile(eval_small=SMALL_EVAL)
    result = run_pytest(pytester, "--executor", "dask://127.0.0.1:abc", timeout=60)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *dask://HOST:PORT*"])


def test_without_distributed_the_message_names_the_extra(pytester, monkeypatch):
    fake = pytester.mkdir("no-dask") / "distributed"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    monkeypatch.setenv("PYTHONPATH", str(fake.parent))
    pytester.makepyfile(eval_small=SMALL_EVAL)
    result = run_pytest(pytester, "--executor", "dask://127.0.0.1:8786", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    result.stderr.fnmatch_lines(
        [
            "ERROR: --executor dask://127.0.0.1:8786 needs Dask's distributed package: "
            'pip install "dotevals[dask]"'
        ]
    )
