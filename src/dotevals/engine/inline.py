"""Running an evaluation's rows in the main process.

Sync rows run one after another under a sync strategy; async rows run on the
event loop under an async strategy. Every finished row's Record goes to
``sink`` (storage and progress), in the order the strategy yields them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from dotevals.concurrency import Adaptive, AsyncStrategy, Sequential, SyncStrategy
from dotevals.engine.scoring import (
    ascore_row,
    async_caller,
    failed_record,
    score_row,
    sync_caller,
)
from dotevals.errors import DatasetError
from dotevals.evaluation import Evaluation
from dotevals.models import Record

Rows = Iterator[tuple[int, "dict[str, Any] | DatasetError"]]
Sink = Callable[[Record], None]


def strategy_for(evaluation: Evaluation) -> SyncStrategy | AsyncStrategy:
    """A private copy of the evaluation's strategy (strategies keep per-run state)."""
    if evaluation.concurrency is None:
        return Adaptive() if evaluation.is_async else Sequential()
    return copy.copy(evaluation.concurrency)


def run_sync(
    evaluation: Evaluation,
    fixtures: dict[str, Any],
    rows: Rows,
    sink: Sink,
    timeout: float | None = None,
) -> None:
    strategy = strategy_for(evaluation)
    assert isinstance(strategy, SyncStrategy)
    call = sync_caller(evaluation.func, evaluation.retrying)

    def task(item_id: int, row: dict[str, Any] | DatasetError) -> Callable[[], Record]:
        if isinstance(row, DatasetError):
            return lambda: failed_record(item_id, {}, row)
        return lambda: score_row(call, item_id, row, fixtures, timeout)

    for record in strategy.run(task(item_id, row) for item_id, row in rows):
        sink(record)


async def run_async(
    evaluation: Evaluation,
    fixtures: dict[str, Any],
    rows: Rows,
    sink: Sink,
    timeout: float | None = None,
) -> None:
    strategy = strategy_for(evaluation)
    assert isinstance(strategy, AsyncStrategy)
    call = async_caller(evaluation.func, evaluation.retrying)

    def task(item_id: int, row: dict[str, Any] | DatasetError) -> Callable[[], Any]:
        if isinstance(row, DatasetError):

            async def bad_row() -> Record:
                return failed_record(item_id, {}, row)

            return bad_row
        return lambda: ascore_row(call, item_id, row, fixtures, timeout)

    async for record in strategy.run(task(item_id, row) for item_id, row in rows):
        sink(record)
