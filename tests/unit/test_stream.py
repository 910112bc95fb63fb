"""The ordered, bounded stream (``dotevals._engine.stream``) against an in-memory executor.

Rows are scored in this process by ``worker_process.run_chunk``; the test decides when
each chunk's future resolves, dies or hangs.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import cloudpickle
import loky
import pytest
from fake_executor import FakeClock, FakeExecutor, until

from dotevals import Score
from dotevals._declare.retry_policy import make_policy
from dotevals._engine import stream as main_stream
from dotevals._engine.deadline import RAISED, SIGNALLED
from dotevals._engine.executors.local import LocalPool
from dotevals._engine.start_marks import note
from dotevals._engine.stream import MAX_CHUNK, ChunkSizer, stream
from dotevals._engine.wire import Payload
from dotevals._engine.worker import process as worker_process
from dotevals.models import Record

TIMEOUT_ERROR = "RowTimeoutError: the row ran longer than its"


def score_n(n: int) -> Score:
    return Score("v", n)


def payload(func: Any = score_n, timeout: float | None = None) -> Payload:
    return Payload(func, make_policy(None), (), {}, {}, (), timeout)


class CountedRows:
    """Samples ``(i, 0, {"n": i})``, counting how many were read."""

    def __init__(self, count: int | None = None):
        self.count = count
        self.read = 0

    def __iter__(self) -> Iterator[tuple[int, int, dict[str, Any]]]:
        return self

    def __next__(self) -> tuple[int, int, dict[str, Any]]:
        if self.count is not None and self.read >= self.count:
            raise StopIteration
        self.read += 1
        return self.read - 1, 0, {"n": self.read - 1}


@pytest.fixture(autouse=True)
def fresh_worker_state():
    yield
    worker_process.close_fixtures()


Steps = Callable[[asyncio.Task[None]], Awaitable[None]]


def run_stream(
    executor: FakeExecutor,
    rows: Any,
    chunk_size: int | None = None,
    steps: Steps | None = None,
    records: list[Record] | None = None,
    clock: FakeClock | None = None,
    **kw: Any,
) -> list[Record]:
    """Stream ``rows`` while ``steps(task)`` settles the executor's calls; return what was sunk
    (into ``records`` when given: kept when the stream raises)."""
    sunk: list[Record] = [] if records is None else records

    async def main() -> None:
        task = asyncio.create_task(
            stream(executor, "eval_x", payload(**kw), iter(rows), sunk.append, chunk_size, clock)
        )
        if steps is not None:
            await steps(task)
        await task

    asyncio.run(main())
    return sunk


def values(records: list[Record]) -> dict[int, Any]:
    return {r.item_id: r.result.scores[0].value for r in records if not r.failed}


# dataset order -----------------------------------------------------------------


def test_results_reach_the_sink_in_dataset_order_whatever_order_chunks_finish_in():
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        while not task.done():
            await until(lambda: executor.pending or task.done(), task)
            newest_first = list(reversed(executor.pending))
            for call in newest_first[:-1]:
                call.run()
            for _ in range(5):
                await asyncio.sleep(0)
            held = len(records)
            if newest_first:
                assert all(r.item_id < newest_first[-1].item_ids[0] for r in records)
                newest_first[-1].run()
            await asyncio.sleep(0)
            assert len(records) >= held

    run_stream(executor, CountedRows(20), 3, steps, records)
    assert [r.item_id for r in records] == list(range(20))
    assert values(records) == {n: n for n in range(20)}


def test_chunks_finishing_newest_first_are_held_back_until_the_oldest_finishes():
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        for call in executor.pending[1:]:
            call.run()
        for _ in range(20):
            await asyncio.sleep(0)
        assert records == []  # the oldest chunk is still out
        executor.pending[0].run()

    run_stream(executor, CountedRows(8), 2, steps, records)
    assert [r.item_id for r in records] == list(range(8))


# no head-of-line blocking: the reorder buffer ---------------------------------------


def test_a_chunk_finishing_before_an_older_one_frees_its_worker_at_once():
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        oldest = executor.pending[0]
        for call in executor.pending[1:]:
            call.run()
        # three chunks finished behind the oldest: three more go out at once
        await until(lambda: len(executor.calls) == 7, task)
        assert executor.pending == [oldest, *executor.calls[4:]]
        assert records == []  # held back: the oldest is still out
        for call in executor.calls[4:]:
            call.run()
        await until(lambda: len(executor.calls) == 10, task)
        assert records == []
        executor.autorun = True
        for call in executor.pending:
            call.run()
        oldest.run()

    run_stream(executor, CountedRows(40), 2, steps, records)
    assert [r.item_id for r in records] == list(range(40))
    assert values(records) == {n: n for n in range(40)}


def test_a_slow_chunk_does_not_hold_the_others_back(monkeypatch):
    """Row 0 runs for as long as all the other rows take: every other chunk runs
    and finishes meanwhile, and its records wait for row 0's to reach the sink."""
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        slow = executor.pending[0]
        while len(executor.calls) < 30:
            await until(lambda: len(executor.pending) > 1, task)
            for call in executor.pending[1:]:
                call.run()
            await asyncio.sleep(0)
        await until(lambda: executor.pending == [slow], task)
        assert records == [] and len(executor.calls) == 30
        slow.run()

    run_stream(executor, CountedRows(60), 2, steps, records)
    assert [r.item_id for r in records] == list(range(60))
    assert executor.calls[0].item_ids == [0, 1]


@pytest.mark.parametrize("chunk_size", [1, 2])
def test_the_reorder_buffer_holds_at_most_its_bound_in_rows(monkeypatch, chunk_size):
    """Behind a chunk that does not finish, the stream reads rows until it holds
    HELD_ROWS_PER_SLOT x slots of them (running or finished), then waits; the
    bound counts rows, so small chunks reach as far as large ones."""
    monkeypatch.setattr(main_stream, "HELD_ROWS_PER_SLOT", 6)
    executor = FakeExecutor(slots=2, autorun=False)
    rows = CountedRows()  # endless
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        slow = executor.pending[0]
        while rows.read < 12:
            await until(lambda: len(executor.pending) > 1, task)
            for call in executor.pending[1:]:
                call.run()
            await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert rows.read == 12 and executor.pending == [slow]  # held: 12 rows, none sunk
        slow.run()
        await until(lambda: len(records) == 12 and len(executor.pending) == 4, task)
        task.cancel()

    with pytest.raises(asyncio.CancelledError):
        run_stream(executor, rows, chunk_size, steps, records)
    assert [r.item_id for r in records] == list(range(12))


def test_chunks_finished_behind_a_dead_worker_are_kept_and_not_run_again():
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        first, second, third, _ = executor.pending
        second.run()
        third.run()
        await until(lambda: len(executor.calls) == 6, task)
        first.die()  # rows 0-1 and the chunks still running are suspects; 2-5 are done
        executor.autorun, executor.fatal = True, {1}
        for call in executor.pending:
            call.die()

    run_stream(executor, CountedRows(12), 2, steps, records)
    assert [r.item_id for r in records] == list(range(12))
    assert {r.item_id for r in records if r.failed} == {1}
    ran = [n for call in executor.calls for n in call.item_ids]
    assert all(ran.count(n) == 1 for n in range(2, 6))  # finished once, never again


# the in-flight bound -----------------------------------------------------------


@pytest.mark.parametrize("slots", [1, 3])
def test_at_most_two_chunks_per_slot_are_in_flight_and_rows_are_read_as_they_free(slots):
    executor = FakeExecutor(slots=slots, autorun=False)
    rows = CountedRows()  # endless
    records: list[Record] = []
    bound = 2 * slots

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == bound, task)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(executor.pending) == bound
        assert rows.read == 5 * bound  # nothing read ahead of the window
        for freed in range(1, 4):
            executor.pending[0].run()
            await until(lambda f=freed: len(executor.calls) == bound + f, task)
            assert len(executor.pending) == bound
            assert rows.read == 5 * (bound + freed)
        task.cancel()

    with pytest.raises(asyncio.CancelledError):
        run_stream(executor, rows, 5, steps, records)
    assert [r.item_id for r in records] == list(range(15))
    assert all(call.future.done() for call in executor.calls)  # the rest were cancelled


def test_a_short_dataset_ends_the_stream_with_every_row_once():
    executor = FakeExecutor(slots=2)
    records = run_stream(executor, CountedRows(7), chunk_size=3)
    assert [r.item_id for r in records] == list(range(7))
    assert [call.item_ids for call in executor.calls] == [[0, 1, 2], [3, 4, 5], [6]]


def test_an_empty_dataset_submits_nothing():
    executor = FakeExecutor(slots=2)
    assert run_stream(executor, CountedRows(0)) == []
    assert executor.calls == []


# chunk sizing ------------------------------------------------------------------


def test_chunk_sizer_starts_small_and_aims_at_chunk_seconds_of_work():
    sizer = ChunkSizer()
    assert sizer.size == 4
    sizer.observe(4, 4 * 0.01)  # 10 ms a row: 50 ms of work is 5 rows
    assert sizer.size == 5
    sizer.observe(5, 5 * 0.01)
    assert sizer.size == 5


def test_chunk_sizer_follows_rows_that_get_faster_smoothly():
    sizer = ChunkSizer()
    sizer.observe(4, 4 * 0.01)
    sizer.observe(5, 5 * 0.001)  # 10x faster: the average moves 30 % of the way
    per_row = 0.7 * 0.01 + 0.3 * 0.001
    assert sizer.size == round(main_stream.CHUNK_SECONDS / per_row)
    sizes = []
    for _ in range(30):
        sizer.observe(sizer.size, sizer.size * 0.001)
        sizes.append(sizer.size)
    assert sizes == sorted(sizes)  # grows towards the new rate without overshooting
    assert sizes[-1] == 50


def test_chunk_sizer_bounds_and_empty_chunks():
    sizer = ChunkSizer()
    sizer.observe(0, 5.0)  # nothing to learn from
    assert sizer.size == 4
    sizer.observe(10, 0.0)  # instant rows: capped
    assert sizer.size == MAX_CHUNK
    slow = ChunkSizer()
    slow.observe(1, 60.0)  # a minute a row: one row a chunk, never zero
    assert slow.size == 1


def test_while_a_chunk_runs_far_longer_than_its_rows_mean_chunks_are_sized_by_it():
    sizer = ChunkSizer()
    for _ in range(20):
        sizer.observe(sizer.size, sizer.size * 0.001)  # 1 ms rows: 50 a chunk
    assert sizer.size == 50
    assert sizer.next_size([(50, 0.05), (40, 0.1)]) == 50  # as long as expected, or queued
    assert sizer.next_size([(50, 0.05), (1, 0.5)]) == 1  # a row half a second so far
    assert sizer.next_size([(10, 0.1)]) == 5  # 10 ms a row so far: 5 rows hold 50 ms
    assert sizer.next_size([]) == 50
    assert ChunkSizer(fixed=7).next_size([(1, 60.0)]) == 7


class OneMillisecondRows(FakeExecutor):
    """Every chunk it runs reports 1 ms a row."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        def timed(*call_args: Any) -> Any:
            packed, _ = fn(*call_args)
            return packed, 0.001 * len(cloudpickle.loads(call_args[2]))

        return super().submit(timed, *args)


def test_chunks_stay_small_while_a_slow_row_runs():
    """Fast chunks keep reporting while the first chunk runs on: without its time so
    far, chunks would grow and take in many rows after it, slow ones too, for one
    worker to run one after another."""
    executor = OneMillisecondRows(slots=2, autorun=False)
    clock = FakeClock()
    rows = CountedRows()  # endless
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        clock.advance(1.0)  # the first chunk's rows have run for a second
        while len(executor.calls) < 40:
            for call in executor.pending[1:]:
                call.run()
            await until(lambda: len(executor.pending) == 4, task)
            clock.advance(0.01)
        assert [len(call.item_ids) for call in executor.calls[4:]] == [1] * 36
        task.cancel()

    with pytest.raises(asyncio.CancelledError):
        run_stream(executor, rows, None, steps, records, clock)
    assert records == []  # all held back behind the first chunk


def test_workers_that_share_cpus_get_chunks_of_as_many_rows_as_workers_that_do_not():
    alone, shared = ChunkSizer(), ChunkSizer(contention=4.0)
    for _ in range(5):
        alone.observe(alone.size, alone.size * 0.005)  # 5 ms a row on a CPU of its own
        shared.observe(shared.size, shared.size * 0.020)  # the same rows at a quarter of one
    assert shared.size == alone.size == 10


class SharedCpuExecutor(FakeExecutor):
    """Its workers share CPUs four to one: each row is timed at 20 ms."""

    contention = 4.0

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        def timed(*call_args: Any) -> Any:
            packed, _ = fn(*call_args)
            return packed, 0.020 * len(cloudpickle.loads(call_args[2]))

        return super().submit(timed, *args)


def test_the_stream_sizes_chunks_by_its_executors_contention():
    executor = SharedCpuExecutor(slots=1)
    records = run_stream(executor, CountedRows(40))
    # two chunks in flight before the first time is known, then 200 ms of a shared CPU
    assert [len(call.item_ids) for call in executor.calls] == [4, 4, 10, 10, 10, 2]
    assert [r.item_id for r in records] == list(range(40))


def test_a_local_pool_counts_its_workers_per_cpu():
    cpus = loky.cpu_count()
    assert LocalPool(cpus).contention == 1.0
    assert LocalPool(4 * cpus).contention == 4.0


def test_fixed_chunk_size_never_changes():
    sizer = ChunkSizer(fixed=7)
    for rows, seconds in [(7, 0.0), (7, 100.0), (0, 1.0)]:
        sizer.observe(rows, seconds)
        assert sizer.size == 7


def test_the_stream_grows_chunks_of_fast_rows():
    executor = FakeExecutor(slots=1)
    records = run_stream(executor, CountedRows(3000))
    sizes = [len(call.item_ids) for call in executor.calls]
    assert sizes[0] == 4
    assert max(sizes) > 4
    assert [r.item_id for r in records] == list(range(3000))


def test_the_stream_keeps_a_fixed_chunk_size():
    executor = FakeExecutor(slots=2)
    run_stream(executor, CountedRows(25), chunk_size=10)
    assert [len(call.item_ids) for call in executor.calls] == [10, 10, 5]


# a worker dies -----------------------------------------------------------------


def test_a_death_in_a_chunk_of_several_rows_is_blamed_on_that_row_only():
    executor = FakeExecutor(slots=2, fatal={6})
    records = run_stream(executor, CountedRows(20), chunk_size=4)
    assert [r.item_id for r in records] == list(range(20))
    failed = {r.item_id: r.error for r in records if r.failed}
    assert failed == {6: "WorkerDiedError: the worker process scoring this row died (WorkerDeath)"}
    assert values(records) == {n: n for n in range(20) if n != 6}
    assert executor.replaced and not any(executor.replaced)
    assert [call.item_ids for call in executor.calls if 6 in call.item_ids][-1] == [6]
    assert [call.item_ids for call in executor.calls][:2] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_rows_that_kill_every_worker_are_each_blamed_once():
    executor = FakeExecutor(slots=3, fatal={0, 2, 3, 9})
    records = run_stream(executor, CountedRows(10), chunk_size=5)
    assert [r.item_id for r in records] == list(range(10))
    assert {r.item_id for r in records if r.failed} == {0, 2, 3, 9}
    alone = [call.item_ids[0] for call in executor.calls if len(call.item_ids) == 1]
    assert all(alone.count(n) >= 1 for n in (0, 2, 3, 9))


def test_a_death_while_isolating_is_isolated_again():
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 1, task)
        executor.pending[0].die()  # rows 0-3 suspected: run one by one, two at a time
        await until(lambda: len(executor.pending) == 2, task)
        assert [c.item_ids for c in executor.pending] == [[0], [1]]
        executor.pending[1].run()
        executor.pending[0].die()  # row 0 or 1 killed it: both run again, alone
        await until(lambda: len(executor.pending) == 1, task)
        assert executor.pending[0].item_ids == [0]
        executor.pending[0].die()
        executor.fatal, executor.autorun = set(), True

    run_stream(executor, CountedRows(4), 4, steps, records)
    assert [r.item_id for r in records] == [0, 1, 2, 3]
    assert {r.item_id for r in records if r.failed} == {0}
    assert len(executor.replaced) == 3


def test_where_the_dead_worker_is_known_only_its_chunk_runs_again_row_by_row():
    """A local pool says which workers survived: the chunk of the one that died runs
    again one row per chunk; the row that kills its worker again runs once more with
    nothing else running, and is blamed when it does then too. Chunks that finished
    are kept, and none of the others is split."""
    executor = FakeExecutor(slots=2, fatal={6}, attributed=True)
    records = run_stream(executor, CountedRows(16), chunk_size=4)
    assert [r.item_id for r in records] == list(range(16))
    assert {r.item_id: r.error for r in records if r.failed} == {
        6: "WorkerDiedError: the worker process scoring this row died (WorkerDeath)"
    }
    chunks = [call.item_ids for call in executor.calls]
    assert chunks == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10, 11],
        [12, 13, 14, 15],
        *([n] for n in range(4, 8)),
        [6],
    ]
    assert executor.replaced == [False, False, False]


def test_a_row_that_kills_its_worker_only_once_is_scored_when_run_alone():
    executor = FakeExecutor(slots=2, autorun=False, attributed=True)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        executor.pending[0].start()
        executor.pending[0].die()  # rows 0-1 go again one per chunk
        await until(lambda: executor.replaced == [False] and len(executor.pending) == 4, task)
        first = executor.pending[0]
        assert first.item_ids == [0]
        first.start()
        first.die()  # row 0 kills its worker again, while other chunks run
        await until(lambda: len(executor.replaced) == 2 and executor.pending, task)
        for _ in range(20):
            await asyncio.sleep(0)
        assert [call.item_ids for call in executor.pending] == [[0]]  # nothing else with it
        executor.autorun = True
        executor.pending[0].run()  # this time it does not kill its worker

    run_stream(executor, CountedRows(12), 2, steps, records)
    assert [r.item_id for r in records] == list(range(12))
    assert values(records) == {n: n for n in range(12)}


def test_a_row_is_not_blamed_for_a_death_its_chunk_shared_with_another_row():
    """Rows 0 and 1 travel in one chunk that brings the pool down; run again one per
    chunk, row 0 kills its worker by chance while nothing else runs. That is its first
    death of its own: it runs once more, alone, and is scored."""
    executor = FakeExecutor(slots=2, autorun=False, attributed=True)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 2, task)
        shared, other = executor.pending
        other.run()
        shared.start()
        shared.die()  # rows 0 and 1 go again one per chunk
        await until(lambda: len(executor.pending) == 2, task)
        assert [call.item_ids for call in executor.pending] == [[0], [1]]
        executor.pending[1].run()
        for _ in range(20):  # the stream takes row 1's records: row 0 runs alone
            await asyncio.sleep(0)
        executor.pending[0].start()
        executor.pending[0].die()  # alone in the pool: row 0's first death
        await until(lambda: len(executor.replaced) == 2 and executor.pending, task)
        assert [call.item_ids for call in executor.pending] == [[0]]
        executor.autorun = True
        executor.pending[0].run()

    run_stream(executor, CountedRows(4), 2, steps, records)
    assert [r.item_id for r in records] == [0, 1, 2, 3]
    assert values(records) == {n: n for n in range(4)}


def test_rows_go_on_while_the_rows_of_a_dead_workers_chunk_run_again():
    executor = FakeExecutor(slots=2, autorun=False, attributed=True)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4, task)
        slow, dying, *_ = executor.pending
        slow.start()
        dying.start()
        dying.die()  # rows 2-3 run again alone; the slow chunk on a survivor, whole
        await until(lambda: executor.replaced == [False] and len(executor.pending) == 4, task)
        resent = executor.pending
        assert [call.item_ids for call in resent] == [[0, 1], [2], [3], [4, 5]]
        for call in resent[1:]:
            call.run()
        # the stream reads on past them while the slow chunk is still out
        await until(lambda: max(executor.calls[-1].item_ids) >= 11, task)
        assert not resent[0].future.done() and records == []
        executor.autorun = True
        for call in executor.pending:
            call.run()

    run_stream(executor, CountedRows(30), 2, steps, records)
    assert [r.item_id for r in records] == list(range(30))
    assert values(records) == {n: n for n in range(30)}


# deadlines and hang detection ----------------------------------------------------


@pytest.fixture
def short_grace(monkeypatch):
    monkeypatch.setattr(main_stream, "HANG_GRACE", 0.0)  # a hung chunk is caught at once


def test_a_chunk_hanging_past_its_deadline_blames_only_its_hung_row(short_grace):
    executor = FakeExecutor(slots=2, hanging={5})
    records = run_stream(executor, CountedRows(12), 3, clock=FakeClock(jumps=True), timeout=0.05)
    assert [r.item_id for r in records] == list(range(12))
    failed = {r.item_id: r.error for r in records if r.failed}
    assert list(failed) == [5]
    assert failed[5].startswith(f"{TIMEOUT_ERROR} 0.05 s timeout and could not be interrupted")
    assert values(records) == {n: n for n in range(12) if n != 5}
    assert executor.replaced and all(executor.replaced)  # hung=True each time


def test_without_a_timeout_a_slow_chunk_is_waited_for(short_grace):
    executor = FakeExecutor(slots=1, autorun=False)
    clock = FakeClock()
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 1, task)
        clock.advance(3600)  # no deadline applies, however long it takes
        await until(lambda: not clock.waiting, task)
        assert not task.done() and executor.replaced == []
        executor.pending[0].run()

    run_stream(executor, CountedRows(2), 2, steps, records, clock)
    assert values(records) == {0: 0, 1: 1}


def test_a_worker_still_setting_up_is_not_taken_for_hung(short_grace):
    executor = FakeExecutor(slots=1, autorun=False)
    clock = FakeClock()
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 1 and clock.waiting, task)
        clock.advance(0.5)  # fixtures set up for three times the chunk's deadline
        await until(lambda: clock.waiting, task)  # the watchdog saw the time, and waits on
        assert not task.done() and executor.replaced == []
        executor.pending[0].run()  # the rows start, and end in time

    run_stream(executor, CountedRows(3), 3, steps, records, clock, timeout=0.05)
    assert [r.error for r in records] == [None, None, None]
    assert values(records) == {0: 0, 1: 1, 2: 2}


def test_the_deadline_counts_from_when_the_rows_start(short_grace):
    executor = FakeExecutor(slots=1, autorun=False)
    clock = FakeClock()
    records: list[Record] = []

    async def moved_on(seconds: float, task: asyncio.Task[None]) -> None:
        """The time moves on, and the watchdog has looked at it."""
        clock.advance(seconds)
        await until(lambda: clock.waiting, task)

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 1 and clock.waiting, task)
        await moved_on(0.2, task)  # four times the deadline, before the row starts
        assert executor.replaced == [] and len(executor.calls) == 1
        executor.pending[0].start()  # then hangs past its deadline...
        await moved_on(main_stream.START_POLL, task)
        clock.advance(0.2)
        await until(lambda: len(executor.calls) == 2 and clock.waiting, task)
        executor.calls[1].start()  # ...and again when it runs alone
        await moved_on(main_stream.START_POLL, task)
        clock.advance(0.2)

    run_stream(executor, CountedRows(1), 1, steps, records, clock, timeout=0.05)
    assert [r.error.split(" and ")[0] for r in records] == [f"{TIMEOUT_ERROR} 0.05 s timeout"]
    assert executor.replaced == [True, True]


def test_a_chunk_hanging_behind_an_older_running_one_is_caught_at_its_own_deadline(
    short_grace,
):
    executor = FakeExecutor(slots=2, autorun=False)
    clock = FakeClock()
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 4 and clock.waiting, task)
        setting_up, hung, third, fourth = executor.pending
        hung.start()  # row 1 starts and hangs; row 0's worker is still setting up
        clock.advance(main_stream.START_POLL)
        await until(lambda: clock.waiting, task)
        clock.advance(0.1)
        await until(lambda: executor.replaced == [True], task)
        assert setting_up.future.cancelled()  # caught without waiting for row 0
        executor.autorun, executor.hanging = True, {1}
        clock.jumps = True
        # row 1 again in a chunk of its own; the others whole (each of one row here)
        assert [call.item_ids for call in executor.pending] == [[0], [1], [2], [3]]
        for call in executor.pending:
            executor.settle(call)
        clock.advance(main_stream.START_POLL)

    run_stream(executor, CountedRows(4), 1, steps, records, clock, timeout=0.05)
    assert [r.item_id for r in records] == [0, 1, 2, 3]
    assert {r.item_id for r in records if r.failed} == {1}
    assert values(records) == {0: 0, 2: 2, 3: 3}


class InterruptedButGoingOn(FakeExecutor):
    """Its workers leave the notes of a row that was interrupted at its deadline,
    caught the RowTimeoutError and went on."""

    def settle(self, call: Any) -> None:
        super().settle(call)
        if set(call.item_ids) & self.hanging:
            note(call.args[3], SIGNALLED)
            note(call.args[3], RAISED)


@pytest.mark.parametrize(
    ("executor", "why"),
    [
        (FakeExecutor, "could not be interrupted (it was in code that does not return to"),
        (InterruptedButGoingOn, "went on after RowTimeoutError was raised in it (its code caught"),
    ],
)
def test_the_error_of_a_row_that_did_not_stop_says_what_became_of_it(short_grace, executor, why):
    records = run_stream(
        executor(slots=2, hanging={2}), CountedRows(4), 1, clock=FakeClock(jumps=True), timeout=1
    )
    failed = {r.item_id: r.error for r in records if r.failed}
    assert list(failed) == [2]
    assert failed[2] == (f"{TIMEOUT_ERROR} 1 s timeout and {why}" + failed[2].split(why)[1])
    assert failed[2].endswith("; its worker process was replaced")


# errors that must cost only their own row -----------------------------------------


def score_lock_at_two(n: int) -> Score:
    import threading

    return Score("s", threading.Lock() if n == 2 else n)


def test_a_result_that_cannot_be_sent_back_is_that_rows_error():
    executor = FakeExecutor(slots=2)
    records = run_stream(executor, CountedRows(6), chunk_size=4, func=score_lock_at_two)
    assert [r.item_id for r in records] == list(range(6))
    failed = {r.item_id: r.error for r in records if r.failed}
    assert list(failed) == [2]
    assert failed[2].startswith(
        "TransferError: the row's result cannot be sent back from its worker process (TypeError: "
    )
    assert "lock" in failed[2]
    assert values(records) == {0: 0, 1: 1, 3: 3, 4: 4, 5: 5}
    assert executor.replaced == []


def raising_at(count: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
    for n in range(count):
        yield n, 0, {"n": n}
    raise OSError("the dataset's file went away")


@pytest.mark.parametrize("chunk_size", [1, 3, 4, None])
def test_rows_read_before_the_dataset_raised_are_all_scored(chunk_size):
    executor = FakeExecutor(slots=2)
    records: list[Record] = []
    with pytest.raises(OSError, match="the dataset's file went away"):
        run_stream(executor, raising_at(10), chunk_size, records=records)
    assert [r.item_id for r in records] == list(range(10))
    assert values(records) == {n: n for n in range(10)}


def test_a_dataset_raising_while_chunks_are_in_flight_waits_for_them():
    executor = FakeExecutor(slots=2, autorun=False)
    records: list[Record] = []

    async def steps(task: asyncio.Task[None]) -> None:
        await until(lambda: len(executor.pending) == 3, task)
        for call in reversed(executor.pending):
            call.run()

    with pytest.raises(OSError):
        run_stream(executor, raising_at(5), 2, steps, records)
    assert [r.item_id for r in records] == [0, 1, 2, 3, 4]


def test_the_marks_of_started_rows_are_removed_with_the_stream(tmp_path, monkeypatch, short_grace):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    executor = FakeExecutor(slots=2, hanging={3})
    records = run_stream(executor, CountedRows(8), 2, clock=FakeClock(jumps=True), timeout=0.05)
    assert [r.item_id for r in records if r.failed] == [3]
    assert executor.calls[0].args[3].startswith(str(tmp_path))  # the rows were watched
    assert list(tmp_path.iterdir()) == []


# the payload goes with the first chunks only ----------------------------------


def test_the_payload_goes_with_the_first_chunks_and_to_a_worker_that_lacks_it():
    """Each worker keeps the payload: after the first 2 x slots chunks, chunks go
    without it; a worker that never got it (here: a fresh worker state) sends its
    chunk back, which goes again with the payload, and no row is lost."""
    executor = FakeExecutor(slots=2, autorun=False)

    async def steps(task: asyncio.Task[None]) -> None:
        settled = 0
        while not task.done():
            await until(lambda seen=settled: len(executor.calls) > seen or task.done(), task)
            for call in executor.calls[settled:]:
                if settled == 6:
                    worker_process.close_fixtures()  # a new worker, that loaded nothing
                call.run()
                settled += 1
            await asyncio.sleep(0)

    records = run_stream(executor, CountedRows(40), chunk_size=4, steps=steps)
    assert [r.item_id for r in records] == list(range(40))
    assert values(records) == {n: n for n in range(40)}
    carried = [call.args[1] is not None for call in executor.calls]
    assert carried[:4] == [True] * 4 and not any(carried[4:6])
    sent_back = [call.item_ids for call in executor.calls if call.future.result() is None]
    resent = [call.item_ids for call in executor.calls if call.args[1] is not None][4:]
    assert sent_back and sent_back == resent  # each went again once, with the payload
    assert executor.calls[6].item_ids == sent_back[0]
