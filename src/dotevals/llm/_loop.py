"""The model-call loop: one event loop per process, in a thread of its own, on which
every call of the provider runs.

Sync rows, async rows on the run's loop, fixtures and scripts may all call one model:
its HTTP client (whose connections belong to one loop), its rate limiter and its
retries live on this loop, so that they are shared by all of them and outlive any
``asyncio.run`` of the caller. A sync caller blocks until its call is done
(:func:`call_sync`); an async caller awaits it from its own loop
(:func:`call_async`). Cancelling the caller (a row's timeout) cancels the call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["call_async", "call_sync", "model_loop"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid: int | None = None


def model_loop() -> asyncio.AbstractEventLoop:
    """This process's model-call loop, started on first use (again in a forked child)."""
    global _loop, _thread, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="dotevals-model-calls", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread, _pid = loop, thread, os.getpid()
        return _loop


def _on_model_loop() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def call_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the model-call loop and wait for its result here. An
    exception raised here meanwhile (a row's timeout, Ctrl-C) cancels it."""
    if _on_model_loop():
        coroutine.close()
        raise RuntimeError("a sync model call cannot be made on the model-call loop itself")
    future = asyncio.run_coroutine_threadsafe(coroutine, model_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


async def call_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await ``coroutine`` run on the model-call loop from the caller's own loop."""
    if _on_model_loop():
        return await coroutine
    future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coroutine, model_loop())
    return await asyncio.wrap_future(future)
