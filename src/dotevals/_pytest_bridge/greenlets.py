"""Blocking pytest code run on the main thread from the Runner's coroutines.

pytest sets a fixture up with plain calls on the main thread, and a fixture
may rely on that (``signal.signal`` only works there). The Runner is a
coroutine on the event loop the evaluations run on, and the async fixtures
of evaluation items must run on that same loop. :func:`call` runs the
blocking code in a greenlet of the main thread; when that code needs an
awaitable's result (:func:`wait_for`), it switches back to the coroutine,
which awaits it on the loop and switches the result back in::

    coroutine (event loop)          greenlet (same thread)
    await call(setup, item) ──────> setup(item): pytest's fixtures
            await fixture() <────── wait_for(fixture())   an async fixture
            result ───────────────> ... more fixtures
            return value <───────── return value
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet  # type: ignore[import-untyped]  # no type hints shipped

from dotevals._run.loop_free import outside_the_loop

__all__ = ["call", "in_call", "wait_for"]

T = TypeVar("T")


class _Blocking(greenlet.greenlet):
    """A greenlet running blocking code for :func:`call`."""


async def call(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on this thread, awaiting what it hands to :func:`wait_for`."""
    child = _Blocking(func)
    child.gr_context = contextvars.copy_context()  # as asyncio.to_thread does
    with outside_the_loop():  # blocking code sees no running loop, as in plain pytest
        result = child.switch(*args)
    while not child.dead:
        try:
            value = await result
        except BaseException as exc:  # raised where the awaitable was needed
            with outside_the_loop():
                result = child.throw(exc)
        else:
            with outside_the_loop():
                result = child.switch(value)
    return result


def in_call() -> bool:
    """Whether this code runs inside :func:`call` (so it may use :func:`wait_for`)."""
    return isinstance(greenlet.getcurrent(), _Blocking)


def wait_for(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, awaited by the coroutine that is in :func:`call`."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Blocking):
        raise RuntimeError("wait_for() is only possible inside greenlets.call()")
    return current.parent.switch(awaitable)
