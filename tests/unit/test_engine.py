"""The process-pool engine's options, refused before any pool starts, and the inline
engine's frozen heap, in this process (real pools: e2e/test_engine.py)."""

from __future__ import annotations

import pytest

import dotevals
from dotevals import Runner, Score, foreach
from dotevals.errors import ConfigurationError

# ---------------------------------------------------------------------------
# Bad options
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, -3, "lots", "0", "2.5", True])
def test_bad_worker_counts_are_refused(workers, tmp_path):
    @foreach("n", range(2))
    def eval_two(n):
        return Score("v", n)

    with pytest.raises(ConfigurationError, match="workers") as info:
        Runner(workers=workers, storage=f"json://{tmp_path}")
    assert repr(workers) in str(info.value)
    with pytest.raises(ConfigurationError, match="workers"):
        dotevals.run(eval_two, workers=workers, storage=f"json://{tmp_path}", progress=False)


def test_bad_worker_memory_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="worker memory"):
        Runner(workers="auto", worker_memory="abc", storage=f"json://{tmp_path}")


# The main process's heap while rows run ----------------------------------------


def samples(evaluation):
    """The evaluation's rows as the samples the engine scores: (item_id, epoch 0, row)."""
    return ((item_id, 0, row) for item_id, row in evaluation.rows())


def test_rows_run_with_the_heap_frozen_and_rarer_young_collections_until_the_last_evaluation_ends():
    import asyncio
    import gc

    from dotevals import Score, foreach
    from dotevals._engine.frozen_heap import YOUNG_THRESHOLD, frozen_heap
    from dotevals._engine.inline import run_async, run_sync
    from dotevals.foreach import get_evaluation

    frozen: list[int] = []
    thresholds: list[tuple[int, ...]] = []
    before = gc.get_threshold()

    @foreach("n", range(3))
    def eval_sync(n):
        frozen.append(gc.get_freeze_count())
        thresholds.append(gc.get_threshold())
        return Score("s", n)

    @foreach("n", range(3))
    async def eval_async(n):
        frozen.append(gc.get_freeze_count())
        thresholds.append(gc.get_threshold())
        return Score("s", n)

    records: list = []
    evaluation = get_evaluation(eval_sync)
    run_sync(evaluation, {}, samples(evaluation), records.append)
    evaluation = get_evaluation(eval_async)
    asyncio.run(run_async(evaluation, {}, samples(evaluation), records.append))
    assert len(records) == 6 and all(count > 0 for count in frozen)
    assert gc.get_freeze_count() == 0
    young = max(YOUNG_THRESHOLD, before[0])
    assert set(thresholds) == {(young, *before[1:])} and gc.get_threshold() == before
    with frozen_heap():
        with frozen_heap():  # another evaluation, ending first
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
