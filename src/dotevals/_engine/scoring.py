"""Both sides: score one row, call the evaluation (with retries) and make its Record.

This is the only place a row's code runs, in the main process or in a
worker. Whatever the row does, the caller gets a Record back: a row's
exception or a wrong return type becomes that row's error.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dotevals._declare.retry_policy import (
    Retries,
    as_async_retrying,
    as_retrying,
    last_attempt_error,
)
from dotevals._declare.row_errors import row_traceback
from dotevals.errors import DatasetError, RowTimeoutError
from dotevals.models import Record, Result, as_result


def error_text(exc: BaseException) -> str:
    """How a row's exception is stored: ``"TypeName: message"`` (of the last attempt)."""
    exc = last_attempt_error(exc)
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def failed_record(item_id: int, row: dict[str, Any], exc: BaseException) -> Record:
    """The record of a row that raised ``exc``: its error and trimmed traceback."""
    return Record(Result(), item_id, row, error=error_text(exc), traceback=row_traceback(exc))


def sync_caller(func: Callable[..., Any], retries: Retries) -> Callable[..., Any]:
    """``func`` under its retry policy.

    The first attempt is a plain call, so a row that succeeds pays nothing for
    retries; after a failure tenacity's own loop takes over from attempt two.
    """

    def call(**kwargs: Any) -> Any:
        try:
            return func(**kwargs)
        except Exception:
            first_failure = sys.exc_info()
        # outside the except block: a later attempt's error is not chained to the first
        return _retry_after_first_failure(retries, func, kwargs, first_failure)

    return call


def async_caller(
    func: Callable[..., Awaitable[Any]], retries: Retries
) -> Callable[..., Awaitable[Any]]:
    """:func:`sync_caller` for coroutine functions."""

    async def call(**kwargs: Any) -> Any:
        try:
            return await func(**kwargs)
        except Exception:
            first_failure = sys.exc_info()
        return await _aretry_after_first_failure(retries, func, kwargs, first_failure)

    return call


def _retry_after_first_failure(
    retries: Retries, func: Callable[..., Any], kwargs: dict[str, Any], exc_info: Any
) -> Any:
    """tenacity's ``Retrying.__call__`` loop, entered with attempt one already failed."""
    import tenacity

    policy = as_retrying(retries).copy()
    policy.begin()
    state = tenacity.RetryCallState(retry_object=policy, fn=func, args=(), kwargs=kwargs)
    state.set_exception(exc_info)
    while True:
        action = policy.iter(retry_state=state)
        if isinstance(action, tenacity.DoAttempt):
            try:
                result = func(**kwargs)
            except BaseException as exc:
                state.set_exception((type(exc), exc, exc.__traceback__))
            else:
                state.set_result(result)
        elif isinstance(action, tenacity.DoSleep):
            state.prepare_for_next_attempt()
            policy.sleep(action)
        else:
            return action


async def _aretry_after_first_failure(
    retries: Retries, func: Callable[..., Awaitable[Any]], kwargs: dict[str, Any], exc_info: Any
) -> Any:
    """tenacity's ``AsyncRetrying.__call__`` loop, entered with attempt one already failed."""
    import tenacity

    policy = as_async_retrying(retries).copy()
    policy.begin()
    state = tenacity.RetryCallState(retry_object=policy, fn=func, args=(), kwargs=kwargs)
    state.set_exception(exc_info)
    while True:
        action = await policy.iter(retry_state=state)
        if isinstance(action, tenacity.DoAttempt):
            try:
                result = await func(**kwargs)
            except BaseException as exc:
                state.set_exception((type(exc), exc, exc.__traceback__))
            else:
                state.set_result(result)
        elif isinstance(action, tenacity.DoSleep):
            state.prepare_for_next_attempt()
            await policy.sleep(action)  # type: ignore[misc]
        else:
            return action


def timeout_error(seconds: float) -> RowTimeoutError:
    return RowTimeoutError(f"the row ran longer than its {seconds:g} s timeout")


@contextmanager
def row_deadline(seconds: float | None) -> Iterator[None]:
    """Interrupt the row with RowTimeoutError after ``seconds`` (SIGALRM, main thread only).

    Python code is interrupted where it stands; code stuck in C without
    releasing control is left to the process pool's watchdog.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise timeout_error(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def score_row(
    call: Callable[..., Any],
    item_id: int,
    row: dict[str, Any] | DatasetError,
    fixtures: dict[str, Any],
    timeout: float | None = None,
) -> Record:
    """The Record of one row: its result, or its error (a row that did not fit the
    columns arrives as its DatasetError)."""
    if isinstance(row, DatasetError):
        return failed_record(item_id, {}, row)
    try:
        if timeout is None:
            value = call(**row, **fixtures)
        else:
            with row_deadline(timeout):
                value = call(**row, **fixtures)
        return Record(as_result(value), item_id, row)
    except Exception as exc:
        return failed_record(item_id, row, exc)


async def ascore_row(
    call: Callable[..., Awaitable[Any]],
    item_id: int,
    row: dict[str, Any] | DatasetError,
    fixtures: dict[str, Any],
    timeout: float | None = None,
) -> Record:
    """:func:`score_row` for coroutine functions."""
    if isinstance(row, DatasetError):
        return failed_record(item_id, {}, row)
    try:
        if timeout is None:
            value = await call(**row, **fixtures)
        else:
            import asyncio  # imported by the running loop already

            task = asyncio.ensure_future(call(**row, **fixtures))
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise timeout_error(timeout)
            value = task.result()
        return Record(as_result(value), item_id, row)
    except Exception as exc:
        return failed_record(item_id, row, exc)
