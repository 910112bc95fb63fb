"""Sync code of a run with no event loop running, as in plain pytest.

The Runner is a coroutine so that async evaluations, async fixtures and the
worker pool's stream can share one event loop. Sync rows and sync fixtures
run in the main process as plain blocking calls, and they should not see
that loop: a row that calls ``asyncio.run`` (a sync model client often does)
would fail if it did.

- :func:`run` runs a coroutine that never waits on an event loop to its end
  without one: a run of sync evaluations in the main process, with sync
  fixtures only, finishes in one step, and never starts asyncio at all.
- :func:`outside_the_loop` hides the running loop from blocking code called by
  a coroutine on it (the loop does nothing meanwhile: the call blocks it).
- :func:`on_a_loop_of_its_own` runs a coroutine that does need a loop from sync
  code, whether or not a loop runs in the calling thread.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["on_a_loop_of_its_own", "outside_the_loop", "run"]

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine``'s result; RuntimeError if it waited on an event loop after all."""
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    coroutine.close()
    raise RuntimeError("dotevals: a run started without an event loop waited on one")


def on_a_loop_of_its_own(coroutine: Coroutine[Any, Any, T]) -> T:
    """``coroutine``'s result, run to its end by ``asyncio.run``: in this thread when no
    event loop runs here, else in a helper thread (a running loop cannot be blocked on)."""
    import asyncio
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # none runs: run below, outside this handler, so no error is chained to it
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, coroutine).result()
    return asyncio.run(coroutine)


@contextmanager
def outside_the_loop() -> Iterator[None]:
    """No event loop runs in this thread, for the code in the block; the running
    one (if any) is back when the block ends.

    asyncio exports ``_get_running_loop``/``_set_running_loop`` for event loop
    implementations; the block is such a pause of the loop.
    """
    asyncio = sys.modules.get("asyncio")
    loop = None if asyncio is None else asyncio._get_running_loop()
    if loop is None:
        yield
        return
    asyncio._set_running_loop(None)  # type: ignore[union-attr]
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)  # type: ignore[union-attr]
