"""The ordered, bounded stream of rows through a pool of workers (any executor).

Rows go out in chunks whose size follows how long rows take (about
``CHUNK_SECONDS`` of work per chunk). At most ``2 x slots`` chunks run at once,
and a worker gets the next chunk as soon as any chunk finishes, whichever it
is: a slow row holds its own chunk, never the pool. Records reach ``sink`` in
dataset order all the same: a chunk that finishes before an older one waits in
the reorder buffer, which holds at most ``HELD_ROWS_PER_SLOT x slots`` rows read
from the dataset and not yet given to ``sink`` (running or finished). A
generator of any length therefore runs in flat memory. An evaluation's pickled
payload goes with its first chunks only: workers keep it.

When a worker dies or a chunk hangs, the pool is replaced and the rows of the
chunk that brought it down are run again one per chunk, so that only the row
that did is stored with that error. Local workers say in each chunk's start
mark which worker started it, and the pool says which workers were alive when
it broke: the chunks that were running on those go again whole, and the stream
goes on meanwhile. A row whose worker dies in a chunk of its own runs once
more with nothing else running, and is blamed if it kills that worker too
(the chunk it shared with others proves nothing of it); a row that hangs again
is blamed at once (its own deadline says it was that row). Where that
is not known (a Dask cluster, a worker that died before starting its chunk),
every chunk that was running is a suspect, and its rows run again one by one
before any new row. Executors
(:mod:`dotevals._engine.executors.base`) only start workers, submit calls and
say how a worker died.

Chunk sizes follow the mean time of a row, slow rows included: a chunk of
``CHUNK_SECONDS`` of average work keeps a slow row from holding many others
behind it in one worker, and chunks stay small while a slow row is still
running (:meth:`ChunkSizer.next_size`). The reorder buffer is counted in rows,
so that small chunks do not shorten how far past a slow row the other workers
go.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import cloudpickle

from dotevals._engine.deadline import hung_error
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
#: Rows read from the dataset and not yet given to ``sink``, per slot: the bound of
#: the reorder buffer (chunks running, and chunks finished that wait for an older one).
HELD_ROWS_PER_SLOT = 4 * MAX_CHUNK
#: How many times its rows' mean a running chunk takes before it counts as slow.
SLOW_CHUNK = 4.0
#: Seconds past a chunk's row timeouts (counted from when its rows start)
#: before its worker is taken for hung.
HANG_GRACE = 2.0
#: How often the watchdog looks whether a chunk's rows have started.
START_POLL = 0.05

Sink = Callable[[Record], None]


class Clock:
    """The time the watchdog goes by: the event loop's, unless a test gives its own."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, futures: set[asyncio.Future[Any]], seconds: float) -> None:
        """Until one of ``futures`` is done or ``seconds`` have passed (none is cancelled)."""
        await asyncio.wait(futures, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)


class ChunkSizer:
    """Rows per chunk: enough to amortise inter-process overhead, few enough to balance.

    A chunk holds about ``CHUNK_SECONDS`` of one core's work, from the mean time of a
    row so far. Where workers share cores (``contention``, workers per core, above 1),
    each one runs at that fraction of a core and a row's measured time grows by the
    same factor: the target grows with it, so that chunks keep their number of rows.

    A slow row's time is known only when its chunk ends, while the fast rows around
    it keep reporting theirs: the mean would fall, and the next chunk would take in
    many rows, slow ones among them, which one worker then runs one after another.
    So while a chunk has been running ``SLOW_CHUNK`` times longer than its rows'
    mean (:meth:`next_size`), chunks are sized by its time per row so far.
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

    def next_size(self, running: Iterable[tuple[int, float]]) -> int:
        """The size of the next chunk, given the chunks running: (rows, seconds so far)."""
        if self.fixed or self._row_seconds is None:
            return self.size
        slowest = max((seconds / rows for rows, seconds in running), default=0.0)
        if slowest <= SLOW_CHUNK * self._row_seconds:
            return self.size
        return max(1, min(self.size, round(self._target / slowest)))


async def stream(
    executor: Executor,
    name: str,
    payload: Payload,
    rows: Iterator[Sample],
    sink: Sink,
    chunk_size: int | None = None,
    clock: Clock | None = None,
) -> None:
    """Score ``rows`` in the workers; give every Record to ``sink`` in dataset order.

    When a worker dies or a chunk hangs, the pool is replaced and the rows of
    the chunk that brought it down run again one by one, so that only the row
    that did is stored with that error (see the module's docstring). An error
    raised by the dataset itself is raised once every row read before it is
    scored.
    """
    with frozen_heap():  # records are made here per row: see frozen_heap.py
        packed = pack_payload(name, payload, executor.remote)
        sender = _Sender(executor, packed, payload.timeout, clock or Clock())
        sizer = ChunkSizer(fixed=chunk_size, contention=executor.contention)
        held = _Held(sink, HELD_ROWS_PER_SLOT * executor.slots)
        exhausted = False
        dataset_error: Exception | None = None
        try:
            while True:
                sender.send_queued()
                while (
                    not sender.queued
                    and not sender.solo()
                    and not exhausted
                    and len(sender.running) < 2 * executor.slots
                    and held.has_room(size := sizer.next_size(sender.running_times()))
                ):
                    chunk, dataset_error = _take(rows, size)
                    if chunk:
                        held.add(sender.send(_Chunk(chunk)))
                    exhausted = len(chunk) < size
                if not sender.running and not sender.queued:  # every record went to sink
                    if dataset_error is not None:
                        raise dataset_error  # every row read before it is stored
                    return
                try:
                    finished, seconds = await sender.next_finished()
                except _PoolFailure as failure:
                    await _recover(sender, held, failure)
                    continue
                sizer.observe(len(finished.rows), seconds)
                held.give()
        finally:
            sender.close()


async def _recover(sender: _Sender, held: _Held, failure: _PoolFailure) -> None:
    """A worker died or a chunk hung: new workers, and the rows of the chunk that
    brought the pool down run again, one per chunk (see the module's docstring)."""
    hung = isinstance(failure.error, RowTimeoutError)
    culprits = sender.culprits(failure, hung)
    dropped = sender.drop_running()
    if culprits is None:
        await _isolate_all(sender, held, failure, dropped, hung)
        return
    for chunk in dropped:
        if chunk not in culprits:
            if not sender.harvest(chunk):  # it finished before the pool broke: kept
                sender.queued.append(chunk)
        elif chunk.alone or (chunk.suspect and hung):
            chunk.records = [_blamed(chunk.rows[0], failure.error)]
        elif not hung and (chunk.suspect or len(chunk.rows) == 1):
            chunk.alone = True  # its own first death: once more, with nothing else running
            sender.queued.append(chunk)
        else:
            singles = held.split([chunk])
            for single in singles:
                single.suspect = True
            sender.queued.extend(singles)
    held.give()  # stored before the workers are replaced, which may fail
    # a row to run alone goes first, while the new pool is empty; then dataset order
    place = {id(chunk): n for n, chunk in enumerate(held.chunks)}
    sender.queued = deque(
        sorted(sender.queued, key=lambda chunk: (not chunk.alone, place[id(chunk)]))
    )
    sender.replace_workers(hung)


async def _isolate_all(
    sender: _Sender, held: _Held, failure: _PoolFailure, suspects: list[_Chunk], hung: bool
) -> None:
    """Which chunk brought the pool down is not known: new workers, and the rows of every
    chunk that was running run again one by one before any other (a chunk that hung
    with one row is blamed at once if the workers cannot be replaced)."""
    try:
        sender.replace_workers(hung)
    except ClusterLostError:  # the run stops; a row that hung alone is known
        if hung and len(failure.chunk.rows) == 1:
            failure.chunk.records = [_blamed(failure.chunk.rows[0], failure.error)]
            held.give()
        raise
    await sender.isolate(held.split(suspects), held.give, width=sender.executor.slots)


def _take(rows: Iterator[Sample], count: int) -> tuple[list[Sample], Exception | None]:
    """Up to ``count`` rows, and the error that stopped the dataset (rows before it are kept)."""
    chunk: list[Sample] = []
    try:
        for row in islice(rows, count):
            chunk.append(row)
    except Exception as exc:  # raised once the rows read before it are stored
        return chunk, exc
    return chunk, None


@dataclass(eq=False)
class _Chunk:
    rows: list[Sample]
    future: asyncio.Future[Any] | None = None
    #: What the worker marks when it starts scoring the rows (None: not watched).
    mark: str | None = None
    #: When the watchdog started counting the chunk's deadline (None: not yet).
    watched_from: float | None = None
    #: When the chunk was last sent.
    sent_at: float = 0.0
    #: The chunk's records, once it has finished.
    records: list[Record] | None = None
    #: A row of a chunk that brought the pool down, in a chunk of its own.
    suspect: bool = False
    #: A chunk of one row that brought the pool down: run with nothing else running,
    #: and blamed if it does once more (a row is blamed only for what it does alone).
    alone: bool = False


class _Held:
    """The reorder buffer: chunks read from the dataset and not yet given to ``sink``,
    in dataset order, running or finished; at most ``limit`` rows in all (but always
    room for one chunk)."""

    def __init__(self, sink: Sink, limit: int):
        self.sink = sink
        self.limit = limit
        self.chunks: deque[_Chunk] = deque()
        self.rows = 0

    def has_room(self, size: int) -> bool:
        return not self.chunks or self.rows + size <= self.limit

    def add(self, chunk: _Chunk) -> None:
        self.chunks.append(chunk)
        self.rows += len(chunk.rows)

    def give(self) -> None:
        """Give ``sink`` the records of the oldest chunks, as far as they have finished."""
        chunks = self.chunks
        while chunks and chunks[0].records is not None:
            chunk = chunks.popleft()
            self.rows -= len(chunk.rows)
            for record in chunk.records:  # type: ignore[union-attr]
                self.sink(record)

    def split(self, chunks: Iterable[_Chunk]) -> list[_Chunk]:
        """Replace ``chunks`` by one chunk per row, in place; the new chunks in dataset order."""
        split, alone = set(chunks), []
        kept: deque[_Chunk] = deque()
        for chunk in self.chunks:
            if chunk in split:
                singles = [_Chunk([row]) for row in chunk.rows]
                kept.extend(singles)
                alone.extend(singles)
            else:
                kept.append(chunk)
        self.chunks = kept
        return alone


class _PoolFailure(Exception):
    """A worker died, or ``chunk`` ran past its deadline: ``error`` is what to blame a row with."""

    def __init__(self, error: BaseException, chunk: _Chunk):
        super().__init__(str(error))
        self.error = error
        self.chunk = chunk


class _Sender:
    """Sends the chunks of one evaluation, watches them, and says which one finished."""

    def __init__(self, executor: Executor, packed: bytes, timeout: float | None, clock: Clock):
        self.executor = executor
        self.packed = packed
        self.timeout = timeout
        self.clock = clock
        self.evaluation_id = uuid.uuid4().hex
        # Local workers say when a chunk's rows start (the watchdog times them from
        # then) and which worker started it (a worker's death is blamed on its chunk).
        self.marks = None if executor.remote else StartMarks()
        #: Chunks sent with the payload since the workers started.
        self.with_payload = 0
        #: Chunks sent and not finished, in the order they were sent.
        self.running: list[_Chunk] = []
        #: Chunks to send again before any new one (in dataset order).
        self.queued: deque[_Chunk] = deque()

    def send(self, chunk: _Chunk, payload: bool = False) -> _Chunk:
        """Send a chunk. The first ``2 x slots`` chunks carry the payload, which each
        worker keeps for the evaluation; later ones go without (see :meth:`next_finished`)."""
        if payload or self.with_payload < 2 * self.executor.slots:
            self.with_payload += 1
            payload = True
        chunk.mark = self.marks.new() if self.marks is not None else None
        chunk.watched_from = None
        chunk.sent_at = self.clock.now()
        chunk.future = self.executor.submit(
            worker.run_chunk,
            self.evaluation_id,
            self.packed if payload else None,
            pack_rows(chunk.rows),
            chunk.mark,
        )
        self.running.append(chunk)
        return chunk

    def drop_running(self) -> list[_Chunk]:
        """Forget the chunks running: their futures are cancelled, their failures unread."""
        dropped, self.running = self.running, []
        for chunk in dropped:
            self._forget(chunk)
        return dropped

    def send_queued(self) -> None:
        """Send the chunks queued to go again, as far as there is room: a chunk that
        must run alone waits for the pool to empty, and holds everything else back."""
        while self.queued and len(self.running) < 2 * self.executor.slots and not self.solo():
            if self.queued[0].alone and self.running:
                return
            self.send(self.queued.popleft())

    def running_times(self) -> list[tuple[int, float]]:
        """(rows, seconds since sent) of each chunk running."""
        now = self.clock.now()
        return [(len(chunk.rows), now - chunk.sent_at) for chunk in self.running]

    def solo(self) -> bool:
        """A chunk runs alone: nothing else may be sent until it ends."""
        return any(chunk.alone for chunk in self.running)

    def culprits(self, failure: _PoolFailure, hung: bool) -> set[_Chunk] | None:
        """The running chunks that brought the pool down: the one that hung, or those
        whose worker died (None: not known)."""
        if self.marks is None:
            return None
        if hung:
            return {failure.chunk}
        survivors = self.executor.survivors()
        if survivors is None:
            return None
        found = set()
        for chunk in self.running:
            worker_pid = StartMarks.worker(chunk.mark) if chunk.mark is not None else None
            if worker_pid is not None and worker_pid not in survivors:
                found.add(chunk)
        return found or None

    def harvest(self, chunk: _Chunk) -> bool:
        """Whether the chunk finished before its pool broke; its records are kept then."""
        future = chunk.future
        if future is None or not future.done() or future.cancelled():
            return False
        if future.exception() is not None or future.result() is None:
            return False
        chunk.records = cloudpickle.loads(future.result()[0])
        return True

    def replace_workers(self, hung: bool) -> None:
        """New workers: the next chunks carry the payload again."""
        self.with_payload = 0
        self.executor.replace(hung=hung)

    def close(self) -> None:
        self.drop_running()
        if self.marks is not None:
            self.marks.close()

    @staticmethod
    def _forget(chunk: _Chunk) -> None:
        if chunk.future is not None:
            chunk.future.cancel()
        if chunk.mark is not None:
            StartMarks.forget(chunk.mark)

    async def next_finished(self) -> tuple[_Chunk, float]:
        """The next chunk to finish, with its records, and its scoring time.

        _PoolFailure if a worker died or a chunk ran past its deadline. A worker
        that got a chunk without the payload, and had not loaded the evaluation,
        sends it back: it goes again, with the payload.
        """
        while True:
            for chunk in self.running:
                if chunk.future is not None and chunk.future.done():
                    outcome = self._outcome(chunk)
                    self.running.remove(chunk)
                    if outcome is None:
                        self.send(chunk, payload=True)
                        break
                    packed, seconds = outcome
                    chunk.records = cloudpickle.loads(packed)
                    return chunk, seconds
            else:
                await self._wait()

    def _outcome(self, chunk: _Chunk) -> Any:
        """The chunk's result; _PoolFailure if its worker died (its mark is kept then)."""
        assert chunk.future is not None
        try:
            outcome = chunk.future.result()
        except self.executor.died as exc:
            raise _PoolFailure(self.executor.blame(exc), chunk) from exc
        if chunk.mark is not None:
            StartMarks.forget(chunk.mark)
        return outcome

    async def _wait(self) -> None:
        """Until a running chunk finishes; _PoolFailure once one runs past its deadline.

        Rows stop themselves at their timeout; this catches rows that cannot. A
        chunk's deadline counts from when its worker starts the rows, where it says
        so; otherwise (a remote executor) from when it is the oldest chunk running.
        """
        futures = {chunk.future for chunk in self.running if chunk.future is not None}
        if self.timeout is None:
            await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
            return
        now, wake = self.clock.now(), float("inf")
        for place, chunk in enumerate(self.running):
            if chunk.watched_from is None and (
                StartMarks.started(chunk.mark) if chunk.mark is not None else place == 0
            ):
                chunk.watched_from = now
            if chunk.watched_from is not None:
                left = chunk.watched_from + self.timeout * len(chunk.rows) + HANG_GRACE - now
                if left <= 0:
                    raise _PoolFailure(self._hung(chunk), chunk)
                wake = min(wake, left)
            elif chunk.mark is not None:
                wake = min(wake, START_POLL)
        await self.clock.wait(futures, wake)

    def _hung(self, chunk: _Chunk) -> RowTimeoutError:
        """The error of a row that ran past its deadline and did not stop, saying why
        where the worker left word (see :mod:`dotevals._engine.deadline`)."""
        assert self.timeout is not None
        notes = StartMarks.notes(chunk.mark) if chunk.mark is not None else []
        return hung_error(self.timeout, notes)

    async def isolate(self, chunks: list[_Chunk], give: Callable[[], None], width: int) -> None:
        """Run chunks of one row, ``width`` at a time, blaming a failure on a row run alone;
        ``give`` hands finished records on."""
        pending = deque(chunks)
        while pending or self.running:
            while pending and len(self.running) < width:
                self.send(pending.popleft())
            try:
                await self.next_finished()
            except _PoolFailure as failure:
                group = self.drop_running()
                if len(group) == 1:  # stored before the workers are replaced, which may fail
                    group[0].records = [_blamed(group[0].rows[0], failure.error)]
                    give()
                self.replace_workers(isinstance(failure.error, RowTimeoutError))
                if len(group) > 1:
                    await self.isolate(group, give, width=1)
                continue
            give()


def _blamed(row: Sample, error: BaseException) -> Record:
    """The record of a row that a worker's death or hang is blamed on."""
    item_id, epoch, values = row
    return failed_record(item_id, values if isinstance(values, dict) else {}, error, epoch)
