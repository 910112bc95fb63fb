"""What the tests of worker pools (local and Dask) share: helpers for processes, and eval
sources."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

PID_CONFTEST = """
import os
from pathlib import Path

HERE = Path(__file__).parent


def pytest_configure(config):
    (HERE / "main.pid").write_text(str(os.getpid()))
"""


SHIPPED_CONFTEST = """
import threading

import pytest


def triple(x):
    return 3 * x


@pytest.fixture
def lock():
    return threading.Lock()  # cannot be pickled: fine, workers create it


@pytest.fixture
def scale():
    return lambda x: triple(x)
"""


SHIPPED_EVAL = """
import os

from dotevals import Score, foreach

OFFSET = 100
double = lambda x: 2 * x  # noqa: E731


def helper(x):
    return x - 1


def make_eval(extra):
    shift = lambda x: x + extra + OFFSET  # noqa: E731

    @foreach("n", range(20))
    def eval_made(n, scale):
        return Score("v", scale(shift(double(n))), metadata={"pid": os.getpid()})

    return eval_made


eval_factory = make_eval(5)


@foreach("n", range(10))
def eval_lock(n, lock):
    with lock:
        value = sorted(map(lambda v: helper(v * n), [3, 1, 2]))
    return Score("v", value, metadata={"pid": os.getpid()})
"""


def rows_held(url: str) -> int:
    """How many records the storage holds now, read raw while a run may be writing."""
    if url.startswith("json://"):
        root = Path(url.removeprefix("json://"))
        return sum(path.read_bytes().count(b"\n") for path in root.glob("*/*.jsonl"))
    path = Path(url.removeprefix("sqlite://"))
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:  # the run is creating the database
        return 0


def wait_until(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """Poll ``condition`` until it is true; fail (not hang) after ``timeout`` seconds or
    when ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            output = (out or b"").decode() + (err or b"").decode()
            pytest.fail(f"process ended while waiting for {what}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)  # polling interval


def comparable(record) -> tuple:
    """A stored record without what depends on the process it ran in."""
    result = record.result.to_dict()
    for score in result["scores"]:  # to_dict() shares the metadata dict: copy it
        score["metadata"] = {k: v for k, v in score["metadata"].items() if k != "pid"}
    return (record.item_id, record.dataset_row, result, record.error)


def worker_processes(main: psutil.Process) -> list[psutil.Process]:
    """The pool's workers under ``main``: loky's own processes, or those its fork server
    forked (which share the server's command line, but not its parent)."""
    workers = []
    for child in main.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            command = " ".join(child.cmdline())
            if "LokyProcess" in command or (
                "multiprocessing.forkserver" in command and child.ppid() != main.pid
            ):
                workers.append(child)
    return workers


def environment_and_parent(variable: str) -> tuple[str | None, int, str]:
    """In a worker: the variable's value, the worker's parent and the parent's command line."""
    parent = os.getppid()
    return os.environ.get(variable), parent, " ".join(psutil.Process(parent).cmdline())


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def main_pid(pytester: pytest.Pytester) -> int:
    return int((pytester.path / "main.pid").read_text())


def pids(records) -> set[int]:
    """Where rows ran: the pids recorded in their scores' metadata."""
    return {s.metadata["pid"] for r in records for s in r.result.scores if "pid" in s.metadata}


#: A conftest that logs to events.log and has a session and a module fixture that
#: log their setup and teardown with the pid they run in.
EVENTS_CONFTEST = """
import asyncio
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def log(line):
    with (HERE / "events.log").open("a") as f:
        f.write(line + "\\n")


def pytest_configure(config):
    (HERE / "main.pid").write_text(str(os.getpid()))


def pytest_sessionfinish(session):
    log(f"sessionfinish main {os.getpid()}")


@pytest.fixture(scope="session")
def sess():
    log(f"setup sess {os.getpid()}")
    yield "S"
    log(f"teardown sess {os.getpid()}")


@pytest.fixture(scope="module")
def mod(sess):
    log(f"setup mod {os.getpid()}")
    yield f"M:{sess}"
    log(f"teardown mod {os.getpid()}")


"""


#: A fixture that raises, a session fixture whose teardown raises, and evaluations
#: using them and a fixture nothing defines (``eval_teardown`` last).
FAILING_FIXTURES_CONFTEST = """
import pytest


@pytest.fixture
def broken():
    answers = {"a": 1}
    return answers["missing"]


@pytest.fixture(scope="session")
def bad_teardown():
    yield 1
    raise RuntimeError("teardown failed")
"""

FAILING_FIXTURES_EVAL = """
from dotevals import Score, foreach


@foreach("q", range(4))
def eval_broken(q, broken):
    return Score("s", True)


@foreach("q", range(4))
def eval_missing(q, nosuchfixture):
    return Score("s", True)


@foreach("q", range(4))
def eval_teardown(q, bad_teardown):
    return Score("s", True)
"""


#: Forty plain rows, and four rows under a retry policy of 3 attempts of which row 1
#: keeps raising ConnectionError (each attempt logged to attempts.log); tests add the
#: rest of ``eval_flaky``.
RETRIED_EVAL = """
import os
from pathlib import Path

import tenacity
from tenacity import retry_if_exception_type, stop_after_attempt, wait_none

from dotevals import ForEach, Score, foreach

HERE = Path(__file__).parent


@foreach("n", range(40))
def eval_many(n):
    return Score("v", n, metadata={"pid": os.getpid()})


flaky = ForEach(
    retries=tenacity.Retrying(
        stop=stop_after_attempt(3),
        wait=wait_none(),
        retry=retry_if_exception_type(ConnectionError),
        reraise=True,
    )
)


@flaky("n", range(4))
def eval_flaky(n):
    if n == 1:
        with (HERE / "attempts.log").open("a") as f:
            f.write(f"{os.getpid()}\\n")
        raise ConnectionError("server went away")
"""


def mixed_eval(sync_rows: int, sync_seconds: float) -> str:
    """An eval file with an async evaluation (and an async fixture) beside a sync one."""
    return f"""
import asyncio
import os
import time

import pytest

from dotevals import Score, foreach


@pytest.fixture
async def client():
    await asyncio.sleep(0)
    return {{"pid": os.getpid(), "loop": id(asyncio.get_running_loop())}}


@foreach("n", range(20))
async def eval_async(n, client):
    await asyncio.sleep(0.001)
    same_loop = client["loop"] == id(asyncio.get_running_loop())
    return Score("v", same_loop, metadata={{"pid": os.getpid(), "fixture_pid": client["pid"]}})


@foreach("n", range({sync_rows}))
def eval_sync(n):
    time.sleep({sync_seconds})
    return Score("v", n, metadata={{"pid": os.getpid()}})
"""


#: Forty rows of which rows from 8 on touch ``blocked`` and wait until a file ``gate``
#: appears next to the eval file (a minute at most): a run cannot end before the test
#: opens the gate, and it shows it is scoring rows.
GATED_EVAL = """
import time
from pathlib import Path

from dotevals import Score, foreach

HERE = Path(__file__).parent


@foreach("n", range(40))
def eval_gated(n):
    if n >= 8:
        (HERE / "blocked").touch()
        deadline = time.monotonic() + 60
        while not (HERE / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return Score("v", n)
"""


def as_in_a_terminal() -> None:
    """Ctrl-C and SIGTERM as a program started from a terminal gets them (a ``preexec_fn``).

    A test suite started in the background of a non-interactive shell ignores
    SIGINT, and its children would inherit that: a test that sends Ctrl-C needs
    them to have the default handling.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def spawned(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, **kwargs
) -> Iterator[subprocess.Popen]:
    """A process in a session of its own, with the signal handling of a terminal's
    programs and a temporary directory of its own (``TMPDIR``: what a killed run
    leaves there is removed after it); whatever is left of its group is killed after."""
    temporary = tempfile.mkdtemp(prefix="spawned-")  # short: a fork server's socket is in it
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=as_in_a_terminal,
        env={**(os.environ if env is None else env), "TMPDIR": temporary},
        **kwargs,
    )
    try:
        yield proc
    finally:
        kill_group(proc)
        shutil.rmtree(temporary, ignore_errors=True)


def kill_group(proc: subprocess.Popen, wind_down: float = 10.0) -> None:
    """Kill the process and everything left in its process group (pool workers).

    Once the process has ended (a test killed it), the rest of its group first has
    up to ``wind_down`` seconds to end on its own: workers leave with their main
    process, and the resource tracker it started then unlinks the semaphores the
    pool left, which it cannot do once killed.
    """
    if proc.poll() is not None:
        deadline = time.monotonic() + wind_down
        while group_running(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling interval
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def group_running(group: int) -> bool:
    """Some process of process group ``group`` runs (a zombie does not)."""
    for process in psutil.process_iter(["status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == group:
                return True
        except (OSError, psutil.Error):  # it ended meanwhile
            continue
    return False
