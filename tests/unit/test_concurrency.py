"""Concurrency strategies: how the rows of one evaluation are scheduled."""

from __future__ import annotations

import asyncio
import time

import pytest

import dotevals
from dotevals import ForEach, Result, Score
from dotevals.concurrency import (
    Adaptive,
    AsyncSequential,
    Batch,
    Sequential,
    SlidingWindow,
)
from dotevals.errors import ConfigurationError
from dotevals.metrics import accuracy
from dotevals.models import Record
from dotevals.storage import get_storage


class InFlight:
    """Counts rows running at the same time."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.started = 0

    async def row(self, seconds: float) -> None:
        self.now += 1
        self.started += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


def async_eval(strategy, rows: int, seconds: float, tracker: InFlight):
    @ForEach(concurrency=strategy)("x", range(rows))
    async def ev(x):
        await tracker.row(seconds)
        return Score("ok", True, [accuracy()])

    return ev


def run(ev, url: str, **kwargs):
    return dotevals.run(ev, storage=url, progress=False, **kwargs)


async def collect(strategy, tasks):
    return [result async for result in strategy.run(tasks)]


# SlidingWindow / AsyncSequential ----------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_sliding_window_never_exceeds_max_concurrency(url, limit):
    tracker = InFlight()
    summary = run(async_eval(SlidingWindow(limit), 30, 0.005, tracker), url)
    assert tracker.peak == limit
    assert tracker.started == 30
    assert len(summary.records) == 30
    assert summary.metrics == {"ok": {"accuracy": 1.0}}


def test_sliding_window_keeps_the_window_full():
    """A new row starts as soon as one finishes, not when a whole batch is done."""
    order: list[str] = []

    async def row(i: int, seconds: float) -> int:
        order.append(f"start {i}")
        await asyncio.sleep(seconds)
        order.append(f"end {i}")
        return i

    durations = [0.2, 0.01, 0.01, 0.01]
    tasks = [lambda i=i, s=s: row(i, s) for i, s in enumerate(durations)]
    results = asyncio.run(collect(SlidingWindow(2), tasks))
    assert sorted(results) == [0, 1, 2, 3]
    assert results[-1] == 0  # results come as rows complete
    # rows 2 and 3 run while the slow row 0 is still in flight
    assert order.index("end 3") < order.index("end 0")


def test_async_sequential_is_one_at_a_time(url):
    tracker = InFlight()
    summary = run(async_eval(AsyncSequential(), 10, 0.002, tracker), url)
    assert tracker.peak == 1
    assert [r.item_id for r in summary.records] == list(range(10))


def test_strategy_object_is_not_shared_between_runs(url):
    strategy = Adaptive(initial_concurrency=2, adaptation_interval=0.01)
    tracker = InFlight()
    run(async_eval(strategy, 100, 0.005, tracker), url)
    # every run works on its own copy: the object given to ForEach keeps its settings
    assert strategy.current == 2


# Adaptive ---------------------------------------------------------------------


def test_adaptive_grows_while_throughput_rises(url):
    tracker = InFlight()
    strategy = Adaptive(initial_concurrency=2, adaptation_interval=0.02)
    summary = run(async_eval(strategy, 300, 0.01, tracker), url)
    assert len(summary.records) == 300
    assert tracker.peak > 2


def test_adaptive_respects_max_concurrency(url):
    tracker = InFlight()
    strategy = Adaptive(initial_concurrency=2, max_concurrency=4, adaptation_interval=0.01)
    run(async_eval(strategy, 200, 0.005, tracker), url)
    assert tracker.peak == 4


def test_adaptive_backs_off_when_rows_fail():
    strategy = Adaptive(initial_concurrency=16, adaptation_interval=0.01)
    tracker = InFlight()
    limits: list[int] = []

    async def row(i: int) -> Record:
        limits.append(strategy.limit())
        await tracker.row(0.003)
        error = None if i % 10 == 0 else "ConnectionError: overloaded"
        return Record(Result(), i, {"x": i}, error=error)

    results = asyncio.run(collect(strategy, (lambda i=i: row(i) for i in range(150))))
    assert len(results) == 150
    assert sum(r.failed for r in results) == 135
    assert limits[0] == 16 and tracker.peak >= 16  # it started at the initial concurrency
    assert strategy.current < 16
    assert min(limits) == strategy.min_concurrency == 1
    assert limits[-1] < 16


def test_adaptive_keeps_going_when_rows_succeed():
    strategy = Adaptive(initial_concurrency=4, adaptation_interval=0.01)

    async def row(i: int) -> Record:
        await asyncio.sleep(0.003)
        return Record(Result(Score("ok", True, [accuracy()])), i, {"x": i})

    results = asyncio.run(collect(strategy, (lambda i=i: row(i) for i in range(200))))
    assert sorted(r.item_id for r in results) == list(range(200))
    assert strategy.current >= 4


def test_default_adaptive_runs_2000_sleeping_rows_quickly(url):
    tracker = InFlight()

    @dotevals.foreach("x", range(2000))
    async def ev(x):
        await tracker.row(0.05)
        return Score("ok", True, [accuracy()])

    start = time.perf_counter()
    summary = run(ev, url, experiment="fast")
    elapsed = time.perf_counter() - start
    print(f"2000 rows x 0.05 s with the default Adaptive: {elapsed:.2f} s, peak {tracker.peak}")
    assert len(summary.records) == 2000
    assert summary.errors == 0
    assert elapsed < 50  # sequentially this would take 100 s: half of that, even when loaded
    assert len(get_storage(url).load_records("fast", "ev")) == 2000


# Sync strategies ---------------------------------------------------------------


def test_batch_yields_all_results_in_order_batch_by_batch():
    called: list[int] = []
    released: list[tuple[int, int]] = []

    def task(i: int):
        def call() -> int:
            called.append(i)
            return i

        return call

    for result in Batch(3).run(task(i) for i in range(10)):
        released.append((result, len(called)))
    assert [r for r, _ in released] == list(range(10))
    # results of a batch are released once the whole batch has run
    assert [n for _, n in released] == [3, 3, 3, 6, 6, 6, 9, 9, 9, 10]


def test_batch_through_run_stores_every_row(url):
    seen = []

    @ForEach(concurrency=Batch(4))("x", range(10))
    def ev(x):
        seen.append(x)
        return Score("ok", x % 2 == 0, [accuracy()])

    summary = run(ev, url)
    assert seen == list(range(10))
    assert [r.item_id for r in summary.records] == list(range(10))
    assert summary.metrics == {"ok": {"accuracy": 0.5}}


def test_sequential_runs_rows_in_order():
    assert list(Sequential().run([lambda i=i: i * 2 for i in range(5)])) == [0, 2, 4, 6, 8]


# Validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SlidingWindow(0),
        lambda: SlidingWindow(-1),
        lambda: SlidingWindow(2.5),
        lambda: SlidingWindow(True),
        lambda: Batch(0),
        lambda: Batch("4"),
        lambda: Adaptive(initial_concurrency=0),
        lambda: Adaptive(initial_concurrency=10, max_concurrency=5),
        lambda: Adaptive(min_concurrency=4, initial_concurrency=2),
        lambda: Adaptive(adaptation_interval=0),
        lambda: Adaptive(increase_factor=1),
        lambda: Adaptive(error_backoff_factor=1),
        lambda: Adaptive(error_backoff_factor=0),
    ],
)
def test_strategies_validate_arguments(make):
    with pytest.raises(ConfigurationError):
        make()


def test_sliding_window_error_message():
    with pytest.raises(ConfigurationError, match=r"SlidingWindow\(max_concurrency\) must be"):
        SlidingWindow(0)


def test_sync_strategy_on_async_evaluation_is_refused_at_decoration():
    with pytest.raises(ConfigurationError) as info:

        @ForEach(concurrency=Sequential())("x", [1, 2])
        async def ev(x):
            return Score("ok", True, [accuracy()])

    message = str(info.value)
    assert "ev: Sequential cannot schedule an async def evaluation" in message
    assert "SlidingWindow, Adaptive, AsyncSequential" in message


def test_async_strategy_on_sync_evaluation_is_refused_at_decoration():
    with pytest.raises(
        ConfigurationError, match="SlidingWindow cannot schedule a plain.*Sequential, Batch"
    ):

        @ForEach(concurrency=SlidingWindow(2))("x", [1, 2])
        def ev(x):
            return Score("ok", True, [accuracy()])
