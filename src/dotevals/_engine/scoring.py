"""Both sides: score one row, call the evaluation (with retries) and make its Record.

This is the only place a row's code runs, in the main process or in a
worker. Whatever the row does, the caller gets a Record back: a row's
exception or a wrong return type becomes that row's error.

An async row past its timeout is cancelled and its record made at once; the
run goes on without waiting for it. A row that catches the cancellation and
goes on has ``CANCEL_GRACE`` seconds to end; then its coroutine is closed
(``GeneratorExit`` where it waits: its ``finally`` blocks run), at once if the
run ends first, so that the event loop can end too. Only a row that also
catches ``GeneratorExit`` (a bare ``except:`` around an ``await``) outlives
that, and keeps the loop from ending.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dotevals._declare.retry_policy import (
    Retries,
    as_async_retrying,
    as_retrying,
    last_attempt_error,
)
from dotevals._declare.row_errors import row_traceback
from dotevals._engine import exits
from dotevals._engine.deadline import row_deadline, timeout_error
from dotevals.errors import DatasetError, RowExitError, RowTimeoutError
from dotevals.llm.row import Row, enter, leave
from dotevals.models import Record, Result, as_result

if TYPE_CHECKING:
    from dotevals.llm.cost import Prices

exits.install()  # a row's os._exit is the row's error (see exits.py)

#: What a row's code may raise that becomes its error: exceptions, and its attempts
#: to end the process (``sys.exit``, ``os._exit``). ``KeyboardInterrupt`` ends the run.
ROW_ERRORS = (Exception, SystemExit, RowExitError)
#: The same, with a row's timeout (raised where a deadline is kept).
TIMED_ROW_ERRORS = (*ROW_ERRORS, RowTimeoutError)


def error_text(exc: BaseException) -> str:
    """How a row's exception is stored: ``"TypeName: message"`` (of the last attempt)."""
    exc = last_attempt_error(exc)
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def failed_record(item_id: int, row: dict[str, Any], exc: BaseException, epoch: int = 0) -> Record:
    """The record of a row that raised ``exc``: its error and trimmed traceback."""
    return Record(
        Result(), item_id, row, error=error_text(exc), traceback=row_traceback(exc), epoch=epoch
    )


@dataclass(frozen=True)
class Metering:
    """How a run accounts for its rows: the seed each (row, epoch) gets its own from
    (see :class:`dotevals.llm.Row`), and the prices that turn usage into cost."""

    seed: int = 0
    prices: Prices | None = None


def _ended(record: Record, row: Row, start: float, prices: Prices | None) -> Record:
    """``record`` with the seconds since ``start`` and what its row reported; the
    record of a row that called ``os._exit`` has that for its error, even if the
    row caught it."""
    record.duration = time.perf_counter() - start
    if row.exited is not None:
        record = _exited(record, row.exited)
    if row.reported or record.result.usage:
        return row.settle(record, prices)
    return record


def _exited(record: Record, error: RowExitError) -> Record:
    exited = failed_record(record.item_id, record.dataset_row, error, record.epoch)
    exited.duration = record.duration
    return exited


def sync_caller(func: Callable[..., Any], retries: Retries) -> Callable[..., Any]:
    """``func`` under its retry policy, called with its keyword arguments as one dict.

    The first attempt is a plain call, so a row that succeeds pays nothing for
    retries; after a failure tenacity's own loop takes over from attempt two.
    """

    def call(arguments: dict[str, Any]) -> Any:
        try:
            return func(**arguments)
        except Exception:
            first_failure = sys.exc_info()
        # outside the except block: a later attempt's error is not chained to the first
        return _retry_after_first_failure(retries, func, arguments, first_failure)

    return call


def async_caller(
    func: Callable[..., Awaitable[Any]], retries: Retries
) -> Callable[..., Awaitable[Any]]:
    """:func:`sync_caller` for coroutine functions."""

    async def call(arguments: dict[str, Any]) -> Any:
        try:
            return await func(**arguments)
        except Exception:
            first_failure = sys.exc_info()
        return await _aretry_after_first_failure(retries, func, arguments, first_failure)

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
            except (RowTimeoutError, RowExitError):  # the row's time is up, or it exited
                raise
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
            except RowExitError:  # no attempt after the row exited
                raise
            except BaseException as exc:
                state.set_exception((type(exc), exc, exc.__traceback__))
            else:
                state.set_result(result)
        elif isinstance(action, tenacity.DoSleep):
            state.prepare_for_next_attempt()
            await policy.sleep(action)  # type: ignore[misc]
        else:
            return action


#: Seconds an async row cancelled at its timeout has to end before its coroutine is closed.
CANCEL_GRACE = 2.0
#: What closes the coroutines of rows cancelled at their timeout, while it runs (the
#: event loop keeps only weak references to tasks).
_closers: set[Any] = set()


#: Rows scored with seed 0 and no prices (no cost).
NO_METERING = Metering()


def score_row(
    call: Callable[..., Any],
    item_id: int,
    epoch: int,
    row: dict[str, Any] | DatasetError,
    fixtures: dict[str, Any],
    timeout: float | None = None,
    metering: Metering = NO_METERING,
) -> Record:
    """The Record of one (row, epoch): its result, or its error (a row that did not fit
    the columns arrives as its DatasetError), with the seconds it took and what its
    model calls reported (:func:`dotevals.llm.current_row` is the row meanwhile)."""
    if isinstance(row, DatasetError):
        return failed_record(item_id, {}, row, epoch)
    arguments = {**row, **fixtures} if fixtures else row
    current = Row(item_id, epoch, metering.seed)
    token = enter(current)
    start = time.perf_counter()
    try:
        if timeout is None:
            try:
                record = Record(as_result(call(arguments)), item_id, row, epoch=epoch)
            except ROW_ERRORS as exc:
                record = failed_record(item_id, row, exc, epoch)
        else:
            record = _score_within(timeout, call, item_id, epoch, row, arguments)
    finally:
        leave(token)
    return _ended(record, current, start, metering.prices)


def _score_within(
    timeout: float,
    call: Callable[..., Any],
    item_id: int,
    epoch: int,
    row: dict[str, Any],
    arguments: dict[str, Any],
) -> Record:
    """:func:`score_row` with a deadline: a row that ran past it is stored as timed out,
    whatever its code caught (see :mod:`dotevals._engine.deadline`)."""
    deadline = None
    try:
        with row_deadline(timeout) as deadline:
            value = call(arguments)
        if deadline is not None and deadline.expired:
            raise deadline.timeout()  # the row caught its RowTimeoutError and returned
        return Record(as_result(value), item_id, row, epoch=epoch)
    except TIMED_ROW_ERRORS as exc:
        if deadline is not None and deadline.expired and not isinstance(exc, RowTimeoutError):
            exc = deadline.timeout()  # the row turned its RowTimeoutError into another error
        return failed_record(item_id, row, exc, epoch)


async def ascore_row(
    call: Callable[..., Awaitable[Any]],
    item_id: int,
    epoch: int,
    row: dict[str, Any] | DatasetError,
    fixtures: dict[str, Any],
    timeout: float | None = None,
    metering: Metering = NO_METERING,
) -> Record:
    """:func:`score_row` for coroutine functions (the row's tasks inherit its context)."""
    if isinstance(row, DatasetError):
        return failed_record(item_id, {}, row, epoch)
    arguments = {**row, **fixtures} if fixtures else row
    current = Row(item_id, epoch, metering.seed, is_async=True)
    token = enter(current)
    start = time.perf_counter()
    try:
        if timeout is None:
            value = await call(arguments)
        else:
            import asyncio  # imported by the running loop already

            coroutine = _Closable(call(arguments))
            task = asyncio.ensure_future(coroutine.run())  # with this row as its context
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                _give_up(task, coroutine)
                raise timeout_error(timeout)
            value = task.result()
        record = Record(as_result(value), item_id, row, epoch=epoch)
    except TIMED_ROW_ERRORS as exc:
        failure = exc.exited if isinstance(exc, _LeftTask) else exc
        record = failed_record(item_id, row, failure, epoch)
    finally:
        leave(token)
    return _ended(record, current, start, metering.prices)


class _LeftTask(Exception):
    """A row's ``SystemExit``, carried out of the task its coroutine runs in."""

    def __init__(self, exited: SystemExit):
        super().__init__(str(exited))
        self.exited = exited


class _Closable:
    """A row's coroutine, which :meth:`close` can end from outside the task running it:
    the task then ends cancelled."""

    def __init__(self, coroutine: Awaitable[Any]):
        self.coroutine = coroutine
        self.closed = False

    async def run(self) -> Any:
        try:
            return await self.coroutine
        except SystemExit as exc:  # a task hands SystemExit to the event loop, which ends
            raise _LeftTask(exc) from None
        except RuntimeError:  # "cannot reuse already awaited coroutine": closed below
            if self.closed:
                import asyncio

                raise asyncio.CancelledError from None
            raise

    def close(self) -> None:
        self.closed = True
        with suppress(RuntimeError):  # it ignored GeneratorExit too: it goes on
            self.coroutine.close()  # type: ignore[attr-defined]


def _give_up(task: Any, coroutine: _Closable) -> None:
    """Cancel a row's task at its timeout without waiting for it to end (see the module
    docstring)."""
    import asyncio

    task.cancel()
    task.add_done_callback(_forget)
    closer = asyncio.ensure_future(_close_unless_ended(task, coroutine))
    _closers.add(closer)
    closer.add_done_callback(_closers.discard)


async def _close_unless_ended(task: Any, coroutine: _Closable) -> None:
    """Close the coroutine of a cancelled row still running after ``CANCEL_GRACE``."""
    import asyncio

    try:
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
    finally:  # also when the run ends first and cancels this wait
        if not task.done():
            coroutine.close()
            task.cancel()  # its next step finds the coroutine closed, and ends


def _forget(task: Any) -> None:
    """Take a given-up row's outcome, so that asyncio does not report it unread."""
    if not task.cancelled():
        task.exception()
