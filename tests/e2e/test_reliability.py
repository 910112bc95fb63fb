"""The guarantees of ``docs/reliability.md``, tested the hard way.

Everything here runs for real: scripts and pytest sessions in subprocesses,
killed with real signals; real loky pools whose workers really die; real
files and SQLite databases read back through ``dotevals.storage``. Nothing is
mocked and no timing decides a pass or a fail: times only bound how long a
test may wait before it calls a run hung.

Sections follow the document:

1. the main process is killed (``kill -9`` at random points, then a rerun);
2. a worker process dies (``posix._exit``, a segfault, SIGKILL; a row's ``os._exit`` is
   stopped, see test_row_exits.py);
3. a row hangs (row timeouts, the pool's watchdog);
4. two runs of the same experiment at once (the experiment lock);
5. bad input (one clear line, nothing partial stored).

Each section prints how many cases it tried (``pytest -s`` shows them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import library_alarm
import psutil
import pytest
from pool_support import rows_held, spawned, wait_until, worker_processes
from pytest_output import section_of
from pytest_runs import FAST, run_pytest
from stores import KINDS, raw_item_ids, storage_url, stored_records

import dotevals
from dotevals.models import Record
from dotevals.storage import get_storage
from dotevals.storage.json import safe_name

#: The source of a library that times itself with SIGALRM, for eval files to import.
LIBRARY_ALARM = inspect.getsource(library_alarm)
#: How long a pytest session here may take before it counts as hung.
RUN_TIMEOUT = 90
HAS_PYTEST_TIMEOUT = importlib.util.find_spec("pytest_timeout") is not None
DOTEVALS_SRC = os.path.dirname(dotevals.__file__)


def pytest_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *FAST, "--no-progress", *args]


def comparable(record: Record) -> tuple:
    """A stored record without its timestamp."""
    return (record.item_id, record.dataset_row, record.result.to_dict(), record.error)


def errors_of(records: list[Record]) -> dict[int, str]:
    return {r.item_id: r.error for r in records if r.failed}


def jsonl_files(url: str) -> list[Path]:
    root = Path(url.removeprefix("json://"))
    return sorted(root.glob("*/*.jsonl"))


def parse_every_line(path: Path) -> int:
    """Every line of a .jsonl file is a whole record; the number of records."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} does not end with a newline"
    lines = data.splitlines()
    for line in lines:
        Record.from_dict(json.loads(line))
    return len(lines)


def lock_holders(url: str, experiment: str) -> list[int]:
    """The pids holding the experiment's run lock, read from storage directly."""
    if url.startswith("json://"):
        path = Path(url.removeprefix("json://")) / safe_name(experiment) / "run.lock"
        return [json.loads(path.read_text())["pid"]] if path.exists() else []
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
        rows = db.execute("SELECT pid FROM locks WHERE experiment = ?", (experiment,)).fetchall()
    return [pid for (pid,) in rows]


def sqlite_integrity(url: str) -> str:
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite://"))) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


# ===========================================================================
# 1. The main process is killed (kill -9 at random points), then run again
# ===========================================================================

KILL_ROWS = 200
#: Rows take at least 2 ms, so a chunk of rows sent to a worker holds at most
#: CHUNK_SECONDS / 2 ms = 25 rows: a row this far past K never holds back row K.
GATE_AFTER = 30
KILL_SCRIPT = """
import json
import sys
import time

import dotevals
from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy, mean

URL, WORKERS, SAMPLES, GATE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])


@foreach("n,text", [(n, f"question {n}") for n in range(ROWS)])
def eval_kill(n, text):
    time.sleep(60 if n == GATE else 0.002)  # the gate row waits for the kill
    return Result(
        Score("even", n % 2 == 0, [accuracy()]),
        Score("third", n / 3, [mean()], metadata={"text": text}),
        prompt=text,
    )


if __name__ == "__main__":
    summary = dotevals.run(
        eval_kill,
        experiment="killed",
        storage=URL,
        workers=WORKERS or None,
        samples=SAMPLES if SAMPLES >= 0 else None,
        progress=False,
    )
    print(json.dumps({"rows": summary.rows, "errors": summary.errors, "summary": summary.metrics}))
""".replace("ROWS", str(KILL_ROWS))


def kill_script(directory: Path) -> Path:
    script = directory / "killrun.py"
    script.write_text(KILL_SCRIPT)
    return script


def kill_command(script: Path, url: str, workers: int, samples: int = -1, gate: int = -1):
    return [sys.executable, str(script), url, str(workers), str(samples), str(gate)]


def run_script(script: Path, url: str, workers: int, samples: int = -1) -> dict:
    out = subprocess.run(
        kill_command(script, url, workers, samples),
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> tuple[dict, list[tuple]]:
    """What an uninterrupted run of the kill script prints, and the records it stores."""
    directory = tmp_path_factory.mktemp("reference")
    url = storage_url("json", directory)
    out = run_script(kill_script(directory), url, 0)
    return out, [comparable(r) for r in stored_records(url, "killed", "eval_kill")]


@pytest.fixture(scope="module")
def reference(reference_run) -> list[tuple]:
    """The records of an uninterrupted run of the kill script."""
    return reference_run[1]


def check_after_kill(url: str, reference: list[tuple]) -> tuple[int, int]:
    """What a killed run left is readable and right: (rows stored, cut lines seen)."""
    records = stored_records(url, "killed", "eval_kill")
    ids = [r.item_id for r in records]
    assert ids == list(range(len(ids))), "rows are stored in dataset order, none skipped"
    assert [comparable(r) for r in records] == reference[: len(records)]
    cut = 0
    if url.startswith("json://"):
        root = Path(url.removeprefix("json://"))
        for path in root.glob("*/*.json"):  # experiment.json, *.info.json: written atomically
            json.loads(path.read_text())
        for path in root.glob("*/*.jsonl"):
            lines = path.read_bytes().split(b"\n")
            for line in lines[:-1]:  # whole lines
                Record.from_dict(json.loads(line))
            cut += lines[-1] != b""  # a line cut short by the kill, ignored when reading
    elif Path(url.removeprefix("sqlite://")).exists():
        assert sqlite_integrity(url) == "ok"
    return len(records), cut


def check_complete(url: str, reference: list[tuple]) -> None:
    """After the rerun: every row exactly once, the same as an uninterrupted run."""
    records = stored_records(url, "killed", "eval_kill")
    assert [comparable(r) for r in records] == reference
    raw = raw_item_ids(url, "killed", "eval_kill")
    assert sorted(raw) == list(range(KILL_ROWS)), "a row was stored twice or not at all"
    if url.startswith("json://"):
        (path,) = jsonl_files(url)
        assert parse_every_line(path) == KILL_ROWS
    else:
        assert sqlite_integrity(url) == "ok"
    storage = get_storage(url)
    try:
        assert storage.evaluation_info("killed", "eval_kill").status == "completed"
    finally:
        storage.close()
    assert lock_holders(url, "killed") == []


@pytest.mark.parametrize("workers", [0, 2], ids=["no-workers", "workers=2"])
@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_at_random_points_then_rerun_stores_every_row_once(
    tmp_path, kind, workers, reference_run
):
    """SIGKILL the main process over and over, resuming the same experiment each time, then
    run it to the end. The first kill lands as soon as the process exists (the interpreter
    starting, the experiment being created); each next one once the storage holds a random
    number K of rows (seeded), while rows run and batches are written. A row 30 rows past K
    waits for the kill, so every kill lands before the run ends. After every kill the
    storage reads back as a prefix of the right rows; after the rerun it equals an
    uninterrupted run, every row once."""
    reference_out, reference = reference_run
    script = kill_script(tmp_path)
    url = storage_url(kind, tmp_path)
    rng = random.Random(f"kill-9/{kind}/{workers}")
    stored, held, cut_lines = 0, [], 0
    last = KILL_ROWS - GATE_AFTER  # the last K with room for the gate row
    for attempt in range(5):
        target = 0 if attempt == 0 else rng.randint(stored + 1, min(stored + 60, last))
        gate = target + GATE_AFTER
        with spawned(kill_command(script, url, workers, gate=gate), tmp_path) as proc:
            if target:
                wait_until(lambda k=target: rows_held(url) >= k, 60, f"{target} stored rows", proc)
            proc.send_signal(signal.SIGKILL)  # the main process only, as kill -9 does
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        stored, cut = check_after_kill(url, reference)
        held.append(stored)
        cut_lines += cut
        if stored >= last:
            break
    assert run_script(script, url, workers) == reference_out
    check_complete(url, reference)
    print(
        f"\nkill -9 ({kind}, workers={workers}): {len(held)} kills, the storage holding "
        f"{held} rows after them, {cut_lines} cut .jsonl lines seen; nothing lost"
    )


@pytest.mark.parametrize("cut", ["half a line", "only the newline"])
def test_hand_cut_last_jsonl_line_then_rerun(tmp_path, cut, reference):
    """A .jsonl whose last line was cut short by a crash: the rerun drops the partial record,
    runs that row again and appends after it; a whole record missing only its newline is kept."""
    script = kill_script(tmp_path)
    url = storage_url("json", tmp_path)
    run_script(script, url, 0, samples=100)
    (path,) = jsonl_files(url)
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    keep = (last + len(data)) // 2 if cut == "half a line" else len(data) - 1
    path.write_bytes(data[:keep])
    ids = [r.item_id for r in stored_records(url, "killed", "eval_kill")]
    assert ids == list(range(99 if cut == "half a line" else 100))

    run_script(script, url, 0)
    check_complete(url, reference)
    assert raw_item_ids(url, "killed", "eval_kill") == list(range(KILL_ROWS))


SLOW_ROW_SCRIPT = """
import sys
import time
from pathlib import Path

import dotevals
from dotevals import Score, foreach


@foreach("n", range(10))
def eval_slow_row(n):
    if n == 5:
        Path("row5.started").write_text("")
        time.sleep(60)
    return Score("n", n)


if __name__ == "__main__":
    dotevals.run(eval_slow_row, experiment="slow", storage=sys.argv[1], progress=False)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_rows_finished_before_a_long_row_survive_kill_9(tmp_path, kind):
    script = tmp_path / "slow_row.py"
    script.write_text(SLOW_ROW_SCRIPT)
    url = storage_url(kind, tmp_path)
    with spawned([sys.executable, str(script), url], tmp_path) as proc:
        wait_until((tmp_path / "row5.started").exists, 60, "row 5 to start", proc)
        # the rows before it are written while it runs, within a batch's half second
        wait_until(lambda: rows_held(url) >= 5, 30, "rows 0 to 4 stored", proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert [r.item_id for r in stored_records(url, "slow", "eval_slow_row")] == [0, 1, 2, 3, 4]


def test_workers_do_not_outlive_a_killed_main_process(tmp_path):
    script = kill_script(tmp_path)
    url = storage_url("json", tmp_path)
    with spawned(kill_command(script, url, 2, gate=GATE_AFTER), tmp_path) as proc:
        main = psutil.Process(proc.pid)
        wait_until(lambda: rows_held(url), 60, "rows scored by workers", proc)
        workers = worker_processes(main)
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # not psutil.wait_procs: an orphan's zombie lasts until its new parent reaps it
        wait_until(lambda: not living(workers), 30, "the workers to end")


def living(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes that still run (a zombie has ended)."""
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


# ===========================================================================
# 2. A worker process dies
# ===========================================================================

DYING_EVAL = """
import ctypes
import os
import posix  # posix._exit ends the worker: a row's os._exit is stopped
import signal
from pathlib import Path

from dotevals import Score, foreach
from dotevals.metrics import accuracy

HERE = Path(__file__).parent
DEATHS = {10: "exit", 25: "segfault", 40: "sigkill", 50: "once"}


def log_death(n, how):
    with open(HERE / "deaths.log", "a") as f:
        f.write(f"{n} {how}\\n")


@foreach("n", range(60))
def eval_dying(n):
    how = DEATHS.get(n)
    if how == "once":  # kills its worker the first time only
        marker = HERE / "once.marker"
        if not marker.exists():
            marker.write_text("died")
            log_death(n, how)
            posix._exit(5)
    elif how is not None:
        log_death(n, how)
        if how == "exit":
            posix._exit(3)
        if how == "segfault":
            ctypes.string_at(0)
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
    return Score("n", n, [accuracy()], metadata={"pid": os.getpid()})
"""

DIED = "WorkerDiedError: the worker process scoring this row died"


def deaths(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "deaths.log"
    return path.read_text().splitlines() if path.exists() else []


def test_worker_deaths_blame_only_their_row(pytester):
    pytester.makepyfile(eval_dying=DYING_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(
        pytester, "--workers", "2", "--storage", url, "--experiment", "d", timeout=RUN_TIMEOUT
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    records = stored_records(url, "d", "eval_dying.py::eval_dying")
    assert errors_of(records) == {
        10: f"{DIED} (exit code 3)",
        25: f"{DIED} (killed by signal SIGSEGV)",
        40: f"{DIED} (killed by signal SIGKILL, as the out-of-memory killer does)",
    }
    scored = [r for r in records if not r.failed]
    assert [r.result.scores[0].value for r in scored] == [
        n for n in range(60) if n not in (10, 25, 40)
    ]
    assert os.getpid() not in {r.result.scores[0].metadata["pid"] for r in scored}
    # row 50 killed its worker once, then scored normally when run again on its own
    assert (pytester.path / "once.marker").exists()
    assert raw_item_ids(url, "d", "eval_dying.py::eval_dying") == list(range(60))
    tried = deaths(pytester)
    assert Counter(line.split()[0] for line in tried)["50"] == 1
    print(f"\nworker deaths tried: {len(tried)} ({', '.join(sorted(set(tried)))})")


ALWAYS_DYING_EVAL = """
import ctypes
import os
import posix  # posix._exit ends the worker: a row's os._exit is stopped
from pathlib import Path

from dotevals import Score, foreach

HERE = Path(__file__).parent


@foreach("n", range(6))
def eval_killer(n):
    if n in (1, 2, 4):  # 1 and 2 are in flight together
        with open(HERE / "deaths.log", "a") as f:
            f.write(f"{n} {os.getpid()}\\n")
        if n == 4:
            ctypes.string_at(0)
        posix._exit(7)
    return Score("n", n)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_rows_that_kill_every_worker_are_blamed_once_and_the_run_ends(pytester, kind):
    pytester.makepyfile(eval_killer=ALWAYS_DYING_EVAL)
    url = storage_url(kind, pytester.path)
    result = run_pytest(
        pytester, "--workers", "2", "--storage", url, "--experiment", "k", timeout=60
    )
    assert result.ret == 0, result.stdout.str()
    records = stored_records(url, "k", "eval_killer.py::eval_killer")
    assert errors_of(records) == {
        1: f"{DIED} (exit code 7)",
        2: f"{DIED} (exit code 7)",
        4: f"{DIED} (killed by signal SIGSEGV)",
    }
    assert [r.result.scores[0].value for r in records if not r.failed] == [0, 3, 5]
    assert sorted(raw_item_ids(url, "k", "eval_killer.py::eval_killer")) == list(range(6))
    tried = deaths(pytester)
    per_row = Counter(line.split()[0] for line in tried)
    assert set(per_row) == {"1", "2", "4"}
    assert len({line.split()[1] for line in tried}) == len(tried), "each death is another worker"
    print(f"\nworker deaths tried (always-dying rows): {len(tried)} {dict(per_row)}")


# ===========================================================================
# 3. A row hangs
# ===========================================================================

TIMEOUT = "RowTimeoutError: the row ran longer than its"
UNINTERRUPTIBLE = (
    "could not be interrupted (it was in code that does not return to Python, such as a C "
    "call that does not end, or it blocked the timeout's signal); its worker process was replaced"
)

HANGING_EVAL = """
import asyncio
import os
import time

from dotevals import ForEach, Score


@ForEach(timeout=0.5)("n", range(12))
def eval_sleepy(n):
    if n == 5:
        time.sleep(30)
    return Score("n", n, metadata={"pid": os.getpid()})


@ForEach(timeout=0.5)("n", range(6))
async def eval_waiting(n):
    if n == 2:
        await asyncio.sleep(30)
    return Score("n", n)
"""


@pytest.mark.parametrize("workers", [None, "2"], ids=["main-process", "workers=2"])
def test_hung_sync_and_async_rows_are_stopped_at_their_timeout(pytester, workers):
    pytester.makepyfile(eval_hanging=HANGING_EVAL)
    url = storage_url("json", pytester.path)
    options = ["--workers", workers] if workers else []
    result = run_pytest(pytester, *options, "--storage", url, "--experiment", "h", timeout=60)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)
    sleepy = stored_records(url, "h", "eval_hanging.py::eval_sleepy")
    waiting = stored_records(url, "h", "eval_hanging.py::eval_waiting")
    assert errors_of(sleepy) == {5: f"{TIMEOUT} 0.5 s timeout"}
    assert errors_of(waiting) == {2: f"{TIMEOUT} 0.5 s timeout"}
    assert [r.result.scores[0].value for r in sleepy if not r.failed] == [
        n for n in range(12) if n != 5
    ]
    assert [r.result.scores[0].value for r in waiting if not r.failed] == [0, 1, 3, 4, 5]
    if workers:  # the timeout went off in a worker process
        assert os.getpid() not in {
            r.result.scores[0].metadata["pid"] for r in sleepy if not r.failed
        }
    print("\ntimeouts tried: 2 (a sync row by its signal, an async row by cancellation)")


#: Rows the pool's watchdog must stop: row 5 blocks the timeout's signal and sleeps
#: (never interrupted), or catches its RowTimeoutError and goes on (interrupted).
WATCHDOG_EVAL = """
import signal
import time

from dotevals import ForEach, Score
from dotevals._engine.deadline import SIGNAL


@ForEach(timeout=0.25)("n", range(8))
def eval_stuck(n):
    if n == 5 and HOW == "blocked":
        signal.pthread_sigmask(signal.SIG_BLOCK, [SIGNAL])
        time.sleep(60)
    if n == 5 and HOW == "going on":
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                time.sleep(0.01)
            except BaseException:
                pass
    return Score("n", n)
"""
GOING_ON = (
    "went on after RowTimeoutError was raised in it (its code caught the timeout, with "
    "except BaseException or a bare except); its worker process was replaced"
)


@pytest.mark.parametrize(("how", "said"), [("blocked", UNINTERRUPTIBLE), ("going on", GOING_ON)])
def test_a_row_that_does_not_stop_at_its_timeout_is_caught_by_the_pool_watchdog(
    pytester, how, said
):
    pytester.makepyfile(eval_stuck=f"HOW = {how!r}\n" + WATCHDOG_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(
        pytester, "--workers", "2", "--storage", url, "--experiment", "b", timeout=60
    )
    assert result.ret == 0, result.stdout.str()
    records = stored_records(url, "b", "eval_stuck.py::eval_stuck")
    assert errors_of(records) == {5: f"{TIMEOUT} 0.25 s timeout and {said}"}
    assert [r.result.scores[0].value for r in records if not r.failed] == [0, 1, 2, 3, 4, 6, 7]
    assert raw_item_ids(url, "b", "eval_stuck.py::eval_stuck") == list(range(8))
    print(f"\ntimeouts tried: 1 (row 5 {how} in a worker: the watchdog)")


#: Rows whose code fights the timeout: a library's own alarm (as Math-Verify's
#: timeout decorator arms and clears one), ``except Exception`` and ``except
#: BaseException`` around a loop that would never end. Each loop is bounded by a
#: minute of wall time, so that a timeout that does not hold fails the test
#: instead of hanging it.
FIGHTING_EVAL = """
from library_alarm import library_timed, spin

from dotevals import ForEach, Score


@ForEach(timeout=0.5)("n", range(6))
def eval_fighting(n):
    if n == 1:  # the library arms and clears its alarm, then the row runs on
        library_timed(5, lambda: spin(0.01))
        spin(60)
    if n == 3:
        try:
            spin(60)
        except Exception:
            pass
    if n == 4:
        try:
            spin(60)
        except BaseException:
            return Score("n", "caught it")
    return Score("n", n)


@ForEach(timeout=5)("n", range(2))
def eval_library_alarm(n):  # the library's own alarm goes off within the row's timeout
    return Score("n", library_timed(1, lambda: spin(60)) if n == 1 else n)
"""


@pytest.mark.parametrize("workers", [None, "2"], ids=["main-process", "workers=2"])
def test_a_rows_alarm_and_except_clauses_neither_cancel_its_timeout_nor_are_broken(
    pytester, workers
):
    pytester.makepyfile(eval_fighting=FIGHTING_EVAL, library_alarm=LIBRARY_ALARM)
    url = storage_url("json", pytester.path)
    options = ["--workers", workers] if workers else []
    result = run_pytest(pytester, *options, "--storage", url, "--experiment", "f", timeout=90)
    assert result.ret == 0, result.stdout.str()
    records = stored_records(url, "f", "eval_fighting.py::eval_fighting")
    timed_out = f"{TIMEOUT} 0.5 s timeout"
    assert errors_of(records) == {1: timed_out, 3: timed_out, 4: timed_out}
    assert [r.result.scores[0].value for r in records if not r.failed] == [0, 2, 5]
    library = stored_records(url, "f", "eval_fighting.py::eval_library_alarm")
    assert [r.result.scores[0].value for r in library] == [0, "library timed out"]
    print("\ntimeouts tried: 3 (a library's alarm, except Exception, except BaseException)")


OPTION_TIMEOUT_EVAL = """
import time

from dotevals import ForEach, Score, foreach


@foreach("n", range(4))
def eval_default(n):
    if n == 1:
        time.sleep(30)
    return Score("n", n)


@ForEach(timeout=1.5)("n", range(4))
def eval_own(n):
    if n == 1:
        time.sleep(0.8)  # longer than the option's 0.5 s, within its own 1.5 s
    if n == 2:
        time.sleep(30)
    return Score("n", n)
"""


@pytest.mark.parametrize(("source", "workers"), [("--row-timeout", "2"), ("ini", None)])
def test_timeout_option_and_ini_apply_where_foreach_sets_none(pytester, source, workers):
    pytester.makepyfile(eval_opt=OPTION_TIMEOUT_EVAL)
    url = storage_url("json", pytester.path)
    if source == "ini":
        pytester.makeini("[pytest]\ndotevals_timeout = 0.5\n")
        options = []
    else:
        options = [source, "0.5"]
    if workers:
        options += ["--workers", workers]
    result = run_pytest(pytester, *options, "--storage", url, "--experiment", "o", timeout=60)
    assert result.ret == 0, result.stdout.str()
    default = stored_records(url, "o", "eval_opt.py::eval_default")
    own = stored_records(url, "o", "eval_opt.py::eval_own")
    assert errors_of(default) == {1: f"{TIMEOUT} 0.5 s timeout"}
    assert errors_of(own) == {2: f"{TIMEOUT} 1.5 s timeout"}  # ForEach(timeout=) wins
    assert [r.result.scores[0].value for r in own if not r.failed] == [0, 1, 3]
    print(f"\ntimeouts tried ({source}): 2")


# ===========================================================================
# 4. Two runs of the same experiment at once
# ===========================================================================

LOCK_EVAL = """
import os
import time
from pathlib import Path

from dotevals import Score, foreach

HERE = Path(__file__).parent
GATE = os.environ.get("GATE")  # rows from 8 on wait until this file exists


def log(event):
    with open(HERE / "events.log", "a") as f:
        f.write(f"{os.getpid()} {event}\\n")


def test_plain():
    log("test_plain")


@foreach("n", range(30))
def eval_locked(n):
    log(f"row {n}")
    if n < 8:
        time.sleep(0.1)  # long enough for a batch or two to be written
    elif GATE:
        deadline = time.monotonic() + 60
        while not Path(GATE).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return Score("n", n)
"""

LOCKED = "eval_lock.py::eval_locked"


def stored_rows(url: str, experiment: str) -> int:
    storage = get_storage(url)
    try:
        if not storage.experiment_exists(experiment):
            return 0
        return len(storage.load_records(experiment, LOCKED))
    finally:
        storage.close()


def events_of(pytester: pytest.Pytester, pid: int) -> list[str]:
    path = pytester.path / "events.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split(" ", 1)[1] for line in lines if int(line.split()[0]) == pid]


def gated_run(pytester: pytest.Pytester, url: str, experiment: str):
    gate = pytester.path / f"gate-{experiment}"
    env = {**os.environ, "GATE": str(gate), "PYTEST_ADDOPTS": ""}
    command = pytest_command("eval_lock.py", "--storage", url, "--experiment", experiment)
    return gate, spawned(command, pytester.path, env=env)


@pytest.mark.parametrize("kind", KINDS)
def test_second_run_of_a_running_experiment_stops_at_once(pytester, kind):
    pytester.makepyfile(eval_lock=LOCK_EVAL)
    url = storage_url(kind, pytester.path)
    gate, first_run = gated_run(pytester, url, "nightly")
    with first_run as first:
        wait_until(lambda: stored_rows(url, "nightly") >= 3, 60, "stored rows", first)

        command = pytest_command("eval_lock.py", "--storage", url, "--experiment", "nightly")
        with spawned(command, pytester.path) as second:
            out, err = second.communicate(timeout=60)
        output = out.decode() + err.decode()
        assert second.returncode == pytest.ExitCode.USAGE_ERROR, output
        assert f"experiment 'nightly' in {url} is in use by process {first.pid}" in output
        assert "wait for that run to end, or choose another --experiment" in output
        assert "Traceback" not in output
        assert events_of(pytester, second.pid) == [], "the second run ran a test"

        # another experiment in the same storage runs alongside
        other = subprocess.run(
            pytest_command("eval_lock.py", "--storage", url, "--experiment", "other"),
            cwd=pytester.path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 0, other.stdout + other.stderr
        assert first.poll() is None, "the first run ended before the others were tried"

        gate.touch()
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out.decode() + err.decode()
    for experiment in ("nightly", "other"):
        assert [r.result.scores[0].value for r in stored_records(url, experiment, LOCKED)] == list(
            range(30)
        )
        assert sorted(raw_item_ids(url, experiment, LOCKED)) == list(range(30))
        assert lock_holders(url, experiment) == []
    assert events_of(pytester, first.pid)[0] == "test_plain"


@pytest.mark.parametrize("kind", KINDS)
def test_lock_of_a_killed_run_is_taken_over(pytester, kind):
    pytester.makepyfile(eval_lock=LOCK_EVAL)
    url = storage_url(kind, pytester.path)
    gate, killed_run = gated_run(pytester, url, "nightly")
    with killed_run as killed:
        wait_until(lambda: stored_rows(url, "nightly") >= 3, 60, "stored rows", killed)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    assert lock_holders(url, "nightly") == [killed.pid]  # left behind
    kept = stored_rows(url, "nightly")

    result = run_pytest(
        pytester, "eval_lock.py", "--storage", url, "--experiment", "nightly", timeout=RUN_TIMEOUT
    )
    assert result.ret == 0, result.stdout.str()
    assert [r.result.scores[0].value for r in stored_records(url, "nightly", LOCKED)] == list(
        range(30)
    )
    raw = raw_item_ids(url, "nightly", LOCKED)
    assert sorted(raw) == list(range(30)) and raw[:kept] == list(range(kept))
    assert lock_holders(url, "nightly") == []


# ===========================================================================
# 5. Bad input: one clear line, nothing partial stored
# ===========================================================================


def tried(*names: str) -> None:
    print(f"\nbad inputs tried: {len(names)} ({'; '.join(names)})")


BAD_ROWS_EVAL = """
from dotevals import Score, foreach


@foreach("question,answer", [("1+1", "2", "extra"), ("2+2", "4")])
def eval_first_row(question, answer):
    return Score("ok", True)


LATER = [("1+1", "2"), ("2+2", "4"), ("3+3", "6"), ("4+4",), {"question": "5+5"}]


@foreach("question,answer", LATER)
def eval_later_rows(question, answer):
    return Score("ok", True)


@foreach("question,answer", [{"question": "1+1"}, {"question": "2+2", "answer": "4"}])
def eval_dict_first(question, answer):
    return Score("ok", True)


@foreach("q", ["1", "2"])
def eval_returns_str(q):
    return "42"


@foreach("q", ["1", "2"])
def eval_unknown_param(q, model):
    return Score("ok", True)
"""


def test_bad_rows_return_values_and_parameters(pytester):
    pytester.makepyfile(eval_bad=BAD_ROWS_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "bad")
    # eval_returns_str fails: every row it ran errored
    result.assert_outcomes(passed=1, failed=3, errors=1)
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    assert section_of(result, "eval_returns_str").strip().splitlines()[:3] == [
        "eval_bad.py::eval_returns_str: all 2 stored rows errored; the first (row 0):",
        "",
        "TypeError: an evaluation must return a Score or a Result, got str ('42')",
    ]
    assert section_of(result, "eval_first_row").strip() == (
        "eval_first_row: row 0 has 3 values but the columns are question,answer (2); "
        "make every row match the column spec"
    )
    assert section_of(result, "eval_dict_first").strip() == (
        "eval_dict_first: row 0 has no key 'answer' (its keys: question); "
        "rename the keys or the columns"
    )
    assert "fixture 'model' not found" in section_of(result, "ERROR at setup of eval_unknown_param")

    storage = get_storage(url)
    assert storage.load_records("bad", "eval_bad.py::eval_first_row") == []
    assert storage.load_records("bad", "eval_bad.py::eval_dict_first") == []
    assert storage.load_records("bad", "eval_bad.py::eval_unknown_param") == []
    assert errors_of(storage.load_records("bad", "eval_bad.py::eval_later_rows")) == {
        3: "DatasetError: eval_later_rows: row 3 has 1 values but the columns are "
        "question,answer (2); make every row match the column spec",
        4: "DatasetError: eval_later_rows: row 4 has no key 'answer' (its keys: question); "
        "rename the keys or the columns",
    }
    assert errors_of(storage.load_records("bad", "eval_bad.py::eval_returns_str")) == {
        0: "TypeError: an evaluation must return a Score or a Result, got str ('42')",
        1: "TypeError: an evaluation must return a Score or a Result, got str ('42')",
    }
    for path in jsonl_files(url):
        parse_every_line(path)
    tried(
        "first row with too many values",
        "later row with too few values",
        "later dict row missing a column",
        "first dict row missing a column",
        "function returning a str",
        "parameter neither column nor fixture",
    )


BAD_COLUMN_EVAL = """
from dotevals import Score, foreach


@foreach("question,answr", [("1+1", "2")])
def eval_math(question, answer):
    return Score("ok", True)
"""


def test_column_that_is_not_a_parameter_is_a_collection_error(pytester):
    pytester.makepyfile(eval_column=BAD_COLUMN_EVAL)
    url = storage_url("json", pytester.path)
    result = pytester.runpytest("--no-progress", "--storage", url)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    output = result.stdout.str() + result.stderr.str()
    assert (
        "eval_math: column 'answr' is not a parameter of the function; add it to the "
        "signature or remove it from the column spec" in output
    )
    assert "ERROR collecting eval_column.py" in output
    assert "Traceback" not in output
    assert not (pytester.path / "store").exists()
    tried("column that is not a parameter")


def test_column_error_shows_no_frames_from_inside_dotevals(pytester):
    pytester.makepyfile(eval_column=BAD_COLUMN_EVAL)
    result = pytester.runpytest("--no-progress", "--storage", storage_url("json", pytester.path))
    assert DOTEVALS_SRC not in section_of(result, "ERROR collecting eval_column.py")


UNPICKLABLE_EVAL = """
import threading

import pytest

from dotevals import Score, foreach


@pytest.mark.parametrize("lock", [threading.Lock()])
@foreach("n", range(3))
def eval_lock_value(n, lock):
    return Score("ok", True)


@foreach("obj", [1, threading.Lock(), 3])
def eval_lock_row(obj):
    return Score("ok", obj)
"""


def test_what_cannot_be_sent_to_workers(pytester):
    pytester.makepyfile(eval_unpicklable=UNPICKLABLE_EVAL)
    url = storage_url("json", pytester.path)
    result = run_pytest(
        pytester, "--workers", "2", "--storage", url, "--experiment", "p", timeout=RUN_TIMEOUT
    )
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    text = section_of(result, "eval_lock_value[lock0]").strip()
    assert "\n" not in text
    assert text.startswith(
        "eval_lock_value: fixture value 'lock' cannot be sent to worker processes (TypeError:"
    ) or text.startswith(
        "eval_lock_value[lock0]: fixture value 'lock' cannot be sent to worker processes"
    ), text
    assert stored_records(url, "p", "eval_unpicklable.py::eval_lock_value[lock0]") == []
    rows = stored_records(url, "p", "eval_unpicklable.py::eval_lock_row")
    assert errors_of(rows) == {
        1: "DatasetError: row 1 cannot be sent to a worker process "
        "(TypeError: cannot pickle '_thread.lock' object)"
    }
    assert [r.result.scores[0].value for r in rows if not r.failed] == [1, 3]
    tried("unpicklable fixture value with workers", "unpicklable row with workers")


SIMPLE_EVAL = """
from dotevals import Score, foreach


@foreach("n", range(3))
def eval_simple(n):
    return Score("n", n)
"""


def usage_error(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    output = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in output
    return output


@pytest.mark.parametrize("kind", ["unknown scheme", "json under a file", "sqlite under a file"])
def test_bad_storage_is_a_usage_error_at_start(pytester, kind):
    pytester.makepyfile(eval_simple=SIMPLE_EVAL)
    blocker = pytester.path / "a-file"
    blocker.write_text("not a directory")
    url, expected = {
        "unknown scheme": ("foo://x", "unknown storage 'foo://x': known schemes are "),
        "json under a file": (f"json://{blocker}/store", f"cannot write {blocker}/store/"),
        "sqlite under a file": (
            f"sqlite://{blocker}/results.db",
            f"cannot use database {blocker}/results.db",
        ),
    }[kind]
    result = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "s")
    output = usage_error(result)
    assert f"ERROR: {expected}" in output
    if kind == "unknown scheme":
        assert "json://" in output and "sqlite://" in output
    assert not re.search(r"\d+ (passed|failed)", output), "a test ran"
    assert blocker.read_text() == "not a directory"
    assert not list(pytester.path.glob("**/*.json*")) and not list(pytester.path.glob("**/*.db"))
    tried(f"storage: {kind}")


TIMEOUT_FLAG = "--row-timeout" if HAS_PYTEST_TIMEOUT else "--timeout"
BAD_OPTIONS = [
    (("--workers", "0"), "workers must be a whole number >= 1 or 'auto', got '0'"),
    (("--workers=-3",), "workers must be a whole number >= 1 or 'auto', got '-3'"),
    (("--workers", "lots"), "workers must be a whole number >= 1 or 'auto', got 'lots'"),
    (("--samples=-1",), "samples must be a whole number >= 0, got '-1'"),
    ((TIMEOUT_FLAG, "0"), "timeout must be a number of seconds > 0, got '0'"),
    (("--row-timeout=-1",), "timeout must be a number of seconds > 0, got '-1'"),
    (("--row-timeout", "soon"), "timeout must be a number of seconds > 0, got 'soon'"),
    (("ini", "dotevals_timeout = 0"), "timeout must be a number of seconds > 0, got '0'"),
    (("ini", "dotevals_workers = lots"), "workers must be a whole number >= 1 or 'auto'"),
    (("ini", "dotevals_samples = -1"), "dotevals_samples in the ini file: samples must be a whole"),
]


@pytest.mark.parametrize(
    ("option", "expected"), BAD_OPTIONS, ids=[" ".join(option) for option, _ in BAD_OPTIONS]
)
def test_bad_options_are_usage_errors(pytester, option, expected):
    pytester.makepyfile(eval_simple=SIMPLE_EVAL)
    url = storage_url("json", pytester.path)
    if option[0] == "ini":
        pytester.makeini(f"[pytest]\n{option[1]}\n")
        option = ()
    result = pytester.runpytest("--no-progress", *option, "--storage", url)
    output = usage_error(result)
    assert expected in output
    assert len([line for line in output.splitlines() if expected in line]) == 1
    assert not (pytester.path / "store").exists()
    tried(" ".join(option) or "ini: " + expected.split()[0])


def test_corrupt_middle_line_of_a_jsonl_is_a_clear_error(pytester):
    pytester.makepyfile(eval_simple=SIMPLE_EVAL.replace("range(3)", "range(5)"))
    url = storage_url("json", pytester.path)
    first = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "c")
    first.assert_outcomes(passed=1)
    (path,) = jsonl_files(url)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = '{"item_id": 2, "result": \n'  # line 3 of 5
    path.write_text("".join(lines))
    before = path.read_bytes()

    again = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "c")
    again.assert_outcomes(failed=1)
    output = again.stdout.str() + again.stderr.str()
    assert "Traceback" not in output
    message = section_of(again, "eval_simple").strip()
    assert message.startswith(f"{path}, line 3, is not a valid record (")
    assert message.endswith("delete or fix that line to read this evaluation")
    assert path.read_bytes() == before  # nothing written after it

    cli = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "show", "c", "--storage", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1
    assert cli.stderr.startswith(f"error: {path}, line 3, is not a valid record (")
    assert "Traceback" not in cli.stderr
    tried("corrupt middle line in a .jsonl (run and show)")


def test_run_stopped_by_a_corrupt_jsonl_leaves_no_running_status(pytester):
    pytester.makepyfile(eval_simple=SIMPLE_EVAL)
    url = storage_url("json", pytester.path)
    pytester.runpytest("--no-progress", "--storage", url, "--experiment", "c")
    (path,) = jsonl_files(url)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = "{broken\n"
    path.write_text("".join(lines))
    pytester.runpytest("--no-progress", "--storage", url, "--experiment", "c").assert_outcomes(
        failed=1
    )
    status = get_storage(url).evaluation_info("c", "eval_simple.py::eval_simple").status
    assert status != "running"


@pytest.mark.parametrize("kind", KINDS)
def test_show_of_a_missing_experiment(tmp_path, kind):
    url = storage_url(kind, tmp_path)
    get_storage(url).create_experiment("other")
    cli = subprocess.run(
        [sys.executable, "-m", "dotevals.cli", "show", "nope", "--storage", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1
    assert cli.stdout == ""
    assert cli.stderr == (
        f"error: experiment 'nope' not found in {url} (see 'dotevals list --storage {url}')\n"
    )
    tried(f"show of a missing experiment ({kind})")


SURROGATE_EVAL = """
from dotevals import Result, Score, foreach


@foreach("n", range(3))
def eval_surrogate(n):
    # what a model response decoded with errors="surrogateescape" can hold
    text = "caf\\udce9" if n == 1 else "fine"
    return Result(Score("ok", True), model_response=text)


@foreach("n", range(3))
def eval_next(n):
    return Score("ok", True)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_row_with_a_lone_surrogate_does_not_lose_the_batch(pytester, kind):
    pytester.makepyfile(eval_surrogate=SURROGATE_EVAL)
    url = storage_url(kind, pytester.path)
    result = pytester.runpytest("--no-progress", "--storage", url, "--experiment", "u")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    rows = stored_records(url, "u", "eval_surrogate.py::eval_surrogate")
    assert [r.item_id for r in rows] == [0, 1, 2]
    assert len(stored_records(url, "u", "eval_surrogate.py::eval_next")) == 3
