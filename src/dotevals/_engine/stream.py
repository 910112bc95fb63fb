"""The ordered, bounded stream of rows through a pool of workers (any executor).

Rows go out in chunks whose size follows how long rows take (about
``CHUNK_SECONDS`` of work per chunk), at most ``2 x slots`` chunks are in
flight, and results come back in dataset order: the stream awaits the oldest
chunk first. A generator of any length therefore runs in flat memory. An
evaluation's pickled payload goes with its first chunks only: workers keep it.

When a worker dies or a chunk hangs, the rows that were in flight are run
again one by one, so that only the row that brought its worker down is
stored with that error. Executors (:mod:`dotevals._engine.executors.base`)
only start workers, submit calls and say how a worker died.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import cloudpickle

from dotevals._engine.executors.base import Executor
from dotevals._engine.frozen_heap import frozen_heap
from dotevals._engine.scoring import failed_record
from dotevals._engine.start_marks import StartMarks
from dotevals._engine.wire import Payload, Sample, pack_payload, pack_rows
from dotevals._engine.worker import process as worker
from dotevals.errors import ClusterLostError, RowTimeoutError
from dotevals.models import Record

__all__ = ["ChunkSizer", "Clock", "stream"]

CHUNK_SECONDS = 0.05
MAX_CHUNK = 2000
#: Seconds past a chunk's row timeouts (counted from when its rows start)
#: before its worker is taken for hung.
HANG_GRACE = 2.0
#: How often the watchdog looks whether a chunk's rows have started.
START_POLL = 0.05


class Clock:
    """The time the watchdog goes by: the event loop's, unless a test gives its own."""

    def now(self) -> float:
        return time.monotonic()

    async def settled_within(self, future: asyncio.Future[Any], seconds: float) -> bool:
        """Whether ``future`` is done within ``seconds`` (it is not cancelled either way)."""
        done, _ = await asyncio.wait({future}, timeout=seconds)
        return bool(done)


class ChunkSizer:
    """Rows per chunk: enough to amortise inter-process overhead, few enough to balance.

    A chunk holds about ``CHUNK_SECONDS`` of one core's work. Where workers share
    cores (``contention``, workers per core, above 1), each one runs at that
    fraction of a core and a row's measured time grows by the same factor: the
    target grows with it, so that chunks keep their number of rows.
    """

    def __init__(self, fixed: int | None = None, initial: int = 4, contention: float = 1.0):
        self.fixed = fixed
        self.size = fixed or initial
        self._target = CHUNK_SECONDS * max(1.0, contention)
        self._row_seconds: float | None = None

    def observe(self, rows: int, seconds: float) -> None:
        if self.fixed or rows == 0:
            return
        per_row = max(seconds / rows, 1e-7)
        self._row_seconds = (
            per_row if self._row_seconds is None else 0.7 * self._row_seconds + 0.3 * per_row
        )
        self.size = max(1, min(MAX_CHUNK, round(self._target / self._row_seconds)))


async def stream(
    executor: Executor,
    name: str,
    payload: Payload,
    rows: Iterator[Sample],
    sink: Callable[[Record], None],
    chunk_size: int | None = None,
    clock: Clock | None = None,
) -> None:
    """Score ``rows`` in the workers; give every Record to ``sink`` in dataset order.

    When a worker dies or a chunk hangs, the pool is replaced and the rows
    that were in flight are run again one by one, so that only the row that
    brought its worker down is stored with that error. An error raised by the
    dataset itself is raised once every row read before it is scored.
    """
    with frozen_heap():  # records are made here per row: see frozen_heap.py
        packed = pack_payload(name, payload, executor.remote)
        sender = _Sender(executor, packed, payload.timeout, sink, clock or Clock())
        sizer = ChunkSizer(fixed=chunk_size, contention=executor.contention)
        in_flight: deque[_Chunk] = deque()
        exhausted = False
        dataset_error: Exception | None = None
        try:
            while True:
                while not exhausted and len(in_flight) < 2 * executor.slots:
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
                        sender.replace_workers(hung)
                    except ClusterLostError:  # the run stops; a row that hung alone is known
                        for row in alone:
                            sink(_blamed(row, failure.error))
                        raise
                    await sender.isolate(suspects, window=executor.slots)
                    continue
                sizer.observe(len(in_flight.popleft().rows), seconds)
                for record in records:
                    sink(record)
        finally:
            _drop(in_flight)
            sender.close()


def _take(rows: Iterator[Sample], count: int) -> tuple[list[Sample], Exception | None]:
    """Up to ``count`` rows, and the error that stopped the dataset (rows before it are kept)."""
    chunk: list[Sample] = []
    try:
        for row in islice(rows, count):
            chunk.append(row)
    except Exception as exc:  # raised once the rows read before it are stored
        return chunk, exc
    return chunk, None


def _drop(chunks: deque[_Chunk]) -> None:
    """Forget chunks in flight: their futures are cancelled, their failures unread."""
    for chunk in chunks:
        chunk.future.cancel()
    chunks.clear()


@dataclass
class _Chunk:
    rows: list[Sample]
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
        clock: Clock,
    ):
        self.executor = executor
        self.packed = packed
        self.timeout = timeout
        self.sink = sink
        self.clock = clock
        self.evaluation_id = uuid.uuid4().hex
        # The watchdog times rows from when they start, where a worker can say so.
        self.marks = StartMarks() if timeout is not None and not executor.remote else None
        #: Chunks sent with the payload since the workers started.
        self.with_payload = 0

    def submit(self, rows: list[Sample], payload: bool = False) -> _Chunk:
        """Send a chunk. The first ``2 x slots`` chunks carry the payload, which each
        worker keeps for the evaluation; later ones go without (see :meth:`result`)."""
        if payload or self.with_payload < 2 * self.executor.slots:
            self.with_payload += 1
            payload = True
        mark = self.marks.new() if self.marks is not None else None
        future = self.executor.submit(
            worker.run_chunk,
            self.evaluation_id,
            self.packed if payload else None,
            pack_rows(rows),
            mark,
        )
        return _Chunk(rows, future, mark)

    def replace_workers(self, hung: bool) -> None:
        """New workers: the next chunks carry the payload again."""
        self.with_payload = 0
        self.executor.replace(hung=hung)

    def close(self) -> None:
        if self.marks is not None:
            self.marks.close()

    async def result(self, chunk: _Chunk) -> tuple[list[Record], float]:
        """The chunk's records and scoring time; _PoolFailure if its worker died or hung.

        A worker that got the chunk without the payload, and had not loaded the
        evaluation, sends it back: it goes again, with the payload.
        """
        while True:
            try:
                outcome = await self._watch(chunk)
            except self.executor.died as exc:
                raise _PoolFailure(self.executor.blame(exc)) from exc
            except asyncio.TimeoutError:
                raise _PoolFailure(
                    RowTimeoutError(
                        f"the row ran longer than its {self.timeout:g} s timeout and could "
                        "not be interrupted; its worker process was replaced"
                    )
                ) from None
            finally:
                if chunk.mark is not None:
                    StartMarks.forget(chunk.mark)
            if outcome is not None:
                packed, seconds = outcome
                return cloudpickle.loads(packed), seconds
            again = self.submit(chunk.rows, payload=True)
            chunk.future, chunk.mark = again.future, again.mark

    async def _watch(self, chunk: _Chunk) -> Any:
        """The chunk's outcome; asyncio.TimeoutError once its rows ran past their deadline.

        Rows stop themselves at their timeout; this catches rows that cannot. The
        deadline counts from when the worker starts the rows, where it says so.
        """
        if self.timeout is None:
            return await asyncio.shield(chunk.future)
        clock, future = self.clock, chunk.future
        if chunk.mark is not None:
            while not StartMarks.started(chunk.mark):
                if await clock.settled_within(future, START_POLL):
                    return future.result()
        deadline = clock.now() + self.timeout * len(chunk.rows) + HANG_GRACE
        while (left := deadline - clock.now()) > 0:
            if await clock.settled_within(future, left):
                return future.result()
        raise asyncio.TimeoutError

    async def isolate(self, rows: list[Sample], window: int) -> None:
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
                self.replace_workers(isinstance(failure.error, RowTimeoutError))
                if len(group) > 1:
                    await self.isolate(group, window=1)
                continue
            in_flight.popleft()
            for record in records:
                self.sink(record)


def _blamed(row: Sample, error: Exception) -> Record:
    """The record of a row that a worker's death or hang is blamed on."""
    item_id, epoch, values = row
    return failed_record(item_id, values if isinstance(values, dict) else {}, error, epoch)
