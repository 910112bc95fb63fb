"""Running an evaluation's rows in the main process, without workers.

Sync rows run one after another under a sync strategy, with no event loop
running (:mod:`~dotevals._run.loop_free`); async rows run on the event loop under
an async strategy. Every finished row's Record goes to
``sink`` (storage and progress), in the order the strategy yields them,
with the heap frozen (:mod:`~dotevals._engine.frozen_heap`).
Ctrl-C stops sync rows where they stand (KeyboardInterrupt).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from dotevals._declare.evaluation import EvaluationSpec
from dotevals._engine.frozen_heap import frozen_heap
from dotevals._engine.scoring import (
    NO_METERING,
    Metering,
    ascore_row,
    async_caller,
    score_row,
    sync_caller,
)
from dotevals._run.interrupts import ctrl_c_raises
from dotevals._run.loop_free import outside_the_loop
from dotevals.concurrency import Adaptive, AsyncStrategy, Sequential, SyncStrategy
from dotevals.errors import DatasetError
from dotevals.models import Record

#: The samples to score: (item_id, epoch, the row's arguments or why it has none).
Rows = Iterator[tuple[int, int, "dict[str, Any] | DatasetError"]]
Sink = Callable[[Record], None]


def strategy_for(evaluation: EvaluationSpec) -> SyncStrategy | AsyncStrategy:
    """A private copy of the evaluation's strategy (strategies keep per-run state)."""
    if evaluation.concurrency is None:
        return Adaptive() if evaluation.is_async else Sequential()
    return copy.copy(evaluation.concurrency)


def run_sync(
    evaluation: EvaluationSpec,
    fixtures: dict[str, Any],
    rows: Rows,
    sink: Sink,
    timeout: float | None = None,
    metering: Metering = NO_METERING,
) -> None:
    strategy = strategy_for(evaluation)
    assert isinstance(strategy, SyncStrategy)
    call = sync_caller(evaluation.func, evaluation.retrying)
    # the rows block the event loop: its own Ctrl-C handler would wait for them,
    # and a row may run an event loop of its own
    with ctrl_c_raises(), frozen_heap(), outside_the_loop():
        if type(strategy) is Sequential:  # the default: one row after another, no tasks
            for i, epoch, row in rows:
                sink(score_row(call, i, epoch, row, fixtures, timeout, metering))
            return
        tasks = (
            partial(score_row, call, i, epoch, row, fixtures, timeout, metering)
            for i, epoch, row in rows
        )
        for record in strategy.run(tasks):
            sink(record)


async def run_async(
    evaluation: EvaluationSpec,
    fixtures: dict[str, Any],
    rows: Rows,
    sink: Sink,
    timeout: float | None = None,
    metering: Metering = NO_METERING,
) -> None:
    strategy = strategy_for(evaluation)
    assert isinstance(strategy, AsyncStrategy)
    call = async_caller(evaluation.func, evaluation.retrying)
    tasks = (
        partial(ascore_row, call, i, epoch, row, fixtures, timeout, metering)
        for i, epoch, row in rows
    )
    with frozen_heap():
        async for record in strategy.run(tasks):
            sink(record)
