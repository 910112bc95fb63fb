"""The ordered, bounded stream of rows through a pool of workers (any executor).

Rows go out in chunks whose size follows how long rows take (about
``CHUNK_SECONDS`` of work per chunk), at most ``2 x workers`` chunks are in
flight, and results come back in dataset order: the stream awaits the oldest
chunk first. A generator of any length therefore runs in flat memory.

When a worker dies or a chunk hangs, the rows that were in flight are run
again one by one, so that only the row that brought its worker down is
stored with that error. Executors (:mod:`dotevals.engine.pool` for local
processes, :mod:`dotevals.engine.dask` for a Dask cluster) only start
workers, submit calls and say how a worker died.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.machinery import PathFinder
from itertools import islice
from pathlib import Path
from typing import Any

import cloudpickle

from dotevals.engine import worker
from dotevals.engine.scoring import failed_record
from dotevals.engine.start_marks import StartMarks
from dotevals.engine.transfer import pack_each
from dotevals.errors import (
    ClusterLostError,
    ConfigurationError,
    DatasetError,
    RowTimeoutError,
    WorkerDiedError,
)
from dotevals.models import Record

__all__ = ["ChunkSizer", "Executor", "stream"]

CHUNK_SECONDS = 0.05
MAX_CHUNK = 2000
#: Seconds past a chunk's row timeouts (counted from when its rows start)
#: before its worker is taken for hung.
HANG_GRACE = 2.0
#: How often the watchdog looks whether a chunk's rows have started.
START_POLL = 0.05


class ChunkSizer:
    """Rows per chunk: enough to amortise inter-process overhead, few enough to balance."""

    def __init__(self, fixed: int | None = None, initial: int = 4):
        self.fixed = fixed
        self.size = fixed or initial
        self._row_seconds: float | None = None

    def observe(self, rows: int, seconds: float) -> None:
        if self.fixed or rows == 0:
            return
        per_row = max(seconds / rows, 1e-7)
        self._row_seconds = (
            per_row if self._row_seconds is None else 0.7 * self._row_seconds + 0.3 * per_row
        )
        self.size = max(1, min(MAX_CHUNK, round(CHUNK_SECONDS / self._row_seconds)))


class Executor(ABC):
    """Where chunks run: a pool of ``workers`` that can be replaced when one fails."""

    #: Total number of rows that can run at once.
    workers: int
    #: Whether workers run elsewhere, with only installed packages importable.
    remote: bool = False
    #: Exceptions meaning the worker running a call died.
    died: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def start(self) -> None:
        """Start the workers now, without waiting for them."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` in a worker; the result arrives on the running loop."""

    @abstractmethod
    def replace(self, hung: bool) -> None:
        """A worker died (or hung, when ``hung``): new calls must go to sound workers."""

    @abstractmethod
    def shutdown(self, kill: bool = False) -> None:
        """Stop the workers; they tear their fixtures down as they go."""

    def how_died(self, exc: BaseException) -> str:
        """A few words on how the worker ended."""
        return type(exc).__name__

    def blame(self, exc: BaseException) -> Exception:
        """The error stored for the row whose call failed with ``exc`` (one of ``died``)."""
        return WorkerDiedError(f"the worker process scoring this row died ({self.how_died(exc)})")


async def stream(
    executor: Executor,
    name: str,
    payload: worker.Payload,
    rows: Iterator[tuple[int, dict[str, Any] | DatasetError]],
    sink: Callable[[Record], None],
    chunk_size: int | None = None,
) -> None:
    """Score ``rows`` in the workers; give every Record to ``sink`` in dataset order.

    When a worker dies or a chunk hangs, the pool is replaced and the rows
    that were in flight are run again one by one, so that only the row that
    brought its worker down is stored with that error. An error raised by the
    dataset itself is raised once every row read before it is scored.
    """
    sender = _Sender(executor, pack_payload(name, payload, executor.remote), payload.timeout, sink)
    sizer = ChunkSizer(fixed=chunk_size)
    in_flight: deque[_Chunk] = deque()
    exhausted = False
    dataset_error: Exception | None = None
    try:
        while True:
            while not exhausted and len(in_flight) < 2 * executor.workers:
                chunk, dataset_error = _take(rows, sizer.size)
                if chunk:
                    in_flight.append(sender.submit(chunk))
                exhausted = len(chunk) < sizer.size
            if not in_flight:
                if dataset_error is not None:
                    raise dataset_error  # every row read before it is stored
                return
            try:
                records, seconds = await sender.result(in_flight[0])
            except _PoolFailure as failure:
                hung = isinstance(failure.error, RowTimeoutError)
                alone = in_flight[0].rows if hung and len(in_flight[0].rows) == 1 else []
                suspects = [row for chunk in in_flight for row in chunk.rows]
                _drop(in_flight)
                try:
                    executor.replace(hung=hung)
                except ClusterLostError:  # the run stops; a row that hung alone is known
                    for row in alone:
                        sink(_blamed(row, failure.error))
                    raise
                await sender.isolate(suspects, window=executor.workers)
                continue
            sizer.observe(len(in_flight.popleft().rows), seconds)
            for record in records:
                sink(record)
    finally:
        _drop(in_flight)
        sender.close()


def _take(
    rows: Iterator[tuple[int, Any]], count: int
) -> tuple[list[tuple[int, Any]], Exception | None]:
    """Up to ``count`` rows, and the error that stopped the dataset (rows before it are kept)."""
    chunk: list[tuple[int, Any]] = []
    try:
        for row in islice(rows, count):
            chunk.append(row)
    except Exception as exc:  # noqa: BLE001 - raised once the rows read before it are stored
        return chunk, exc
    return chunk, None


def _drop(chunks: deque[_Chunk]) -> None:
    """Forget chunks in flight: their futures are cancelled, their failures unread."""
    for chunk in chunks:
        chunk.future.cancel()
    chunks.clear()


@dataclass
class _Chunk:
    rows: list[tuple[int, Any]]
    future: asyncio.Future[Any]
    #: What the worker marks when it starts scoring the rows (None: not watched).
    mark: str | None = None


class _PoolFailure(Exception):
    """A worker died, or a chunk ran past its deadline: ``error`` is what to blame a row with."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class _Sender:
    """Sends the chunks of one evaluation and watches them."""

    def __init__(
        self,
        executor: Executor,
        packed: bytes,
        timeout: float | None,
        sink: Callable[[Record], None],
    ):
        self.executor = executor
        self.packed = packed
        self.timeout = timeout
        self.sink = sink
        self.evaluation_id = uuid.uuid4().hex
        # The watchdog times rows from when they start, where a worker can say so.
        self.marks = StartMarks() if timeout is not None and not executor.remote else None

    def submit(self, rows: list[tuple[int, Any]]) -> _Chunk:
        mark = self.marks.new() if self.marks is not None else None
        future = self.executor.submit(
            worker.run_chunk, self.evaluation_id, self.packed, pack_rows(rows), mark
        )
        return _Chunk(rows, future, mark)

    def close(self) -> None:
        if self.marks is not None:
            self.marks.close()

    async def result(self, chunk: _Chunk) -> tuple[list[Record], float]:
        """The chunk's records and scoring time; _PoolFailure if its worker died or hung."""
        try:
            packed, seconds = await self._watch(chunk)
        except self.executor.died as exc:
            raise _PoolFailure(self.executor.blame(exc)) from exc
        except asyncio.TimeoutError:
            raise _PoolFailure(
                RowTimeoutError(
                    f"the row ran longer than its {self.timeout:g} s timeout and could not be "
                    "interrupted; its worker process was replaced"
                )
            ) from None
        finally:
            if chunk.mark is not None:
                StartMarks.forget(chunk.mark)
        return cloudpickle.loads(packed), seconds

    async def _watch(self, chunk: _Chunk) -> Any:
        """The chunk's outcome; asyncio.TimeoutError once its rows ran past their deadline.

        Rows stop themselves at their timeout; this catches rows that cannot. The
        deadline counts from when the worker starts the rows, where it says so.
        """
        if self.timeout is None:
            return await asyncio.shield(chunk.future)
        if chunk.mark is not None:
            while not StartMarks.started(chunk.mark):
                done, _ = await asyncio.wait({chunk.future}, timeout=START_POLL)
                if done:
                    return chunk.future.result()
        deadline = self.timeout * len(chunk.rows) + HANG_GRACE
        return await asyncio.wait_for(asyncio.shield(chunk.future), deadline)

    async def isolate(self, rows: list[tuple[int, Any]], window: int) -> None:
        """Run rows one per chunk, ``window`` at a time, blaming a failure on a row run alone."""
        pending = deque(rows)
        in_flight: deque[_Chunk] = deque()
        while pending or in_flight:
            while pending and len(in_flight) < window:
                in_flight.append(self.submit([pending.popleft()]))
            try:
                records, _ = await self.result(in_flight[0])
            except _PoolFailure as failure:
                group = [chunk.rows[0] for chunk in in_flight]
                _drop(in_flight)
                if len(group) == 1:  # stored before the workers are replaced, which may fail
                    self.sink(_blamed(group[0], failure.error))
                self.executor.replace(hung=isinstance(failure.error, RowTimeoutError))
                if len(group) > 1:
                    await self.isolate(group, window=1)
                continue
            in_flight.popleft()
            for record in records:
                self.sink(record)


def _blamed(row: tuple[int, Any], error: Exception) -> Record:
    """The record of a row that a worker's death or hang is blamed on."""
    item_id, values = row
    return failed_record(item_id, values if isinstance(values, dict) else {}, error)


def pack_payload(name: str, payload: worker.Payload, remote: bool = False) -> bytes:
    """Pickle an evaluation for the workers, naming what cannot be sent."""
    for func in [payload.func, *(spec.func for spec in payload.specs.values())]:
        _send_module_by_value(func, remote)
    try:
        return cloudpickle.dumps(payload)
    except Exception as exc:
        parts = {"the evaluation function": payload.func, "its retry policy": payload.retrying}
        parts.update({f"fixture {n!r}": spec.func for n, spec in payload.specs.items()})
        parts.update({f"fixture value {n!r}": value for n, value in payload.values.items()})
        culprit = next((label for label, obj in parts.items() if not _pickles(obj)), "it")
        raise ConfigurationError(
            f"{name}: {culprit} cannot be sent to worker processes ({type(exc).__name__}: "
            f"{exc}); make it picklable, create it inside a fixture, or run without --workers"
        ) from None


def pack_rows(chunk: list[tuple[int, Any]]) -> bytes:
    """Pickle a chunk; a row that cannot be pickled goes as that row's error."""
    return pack_each(chunk, _unsendable)


def _unsendable(row: tuple[int, Any], exc: Exception) -> tuple[int, Any]:
    item_id = row[0]
    return item_id, DatasetError(
        f"row {item_id} cannot be sent to a worker process ({type(exc).__name__}: {exc})"
    )


def _send_module_by_value(func: Any, remote: bool) -> None:
    """Eval files and conftests travel by value when a worker could not import them.

    Local workers share this process's ``sys.path``: only modules pytest imported
    under names that path cannot resolve (``--import-mode=importlib``) travel by
    value. Remote workers have only what is installed there: the function's
    module and every other module of the project (below the working directory,
    not an installed package) travel by value.
    """
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return
    if remote:
        for local in [module, *_project_modules()]:
            cloudpickle.register_pickle_by_value(local)
    elif PathFinder.find_spec(module.__name__.partition(".")[0], sys.path) is None:
        cloudpickle.register_pickle_by_value(module)


def _project_modules() -> list[Any]:
    """Modules loaded from files below the working directory that are not installed."""
    root = Path.cwd()
    found = []
    for name, module in list(sys.modules.items()):
        path = Path(getattr(module, "__file__", None) or "/")
        if (
            root in path.parents
            and not name.startswith("dotevals")
            and not {"site-packages", "dist-packages"} & set(path.parts)
        ):
            found.append(module)
    return found


def _pickles(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:
        return False
    return True
