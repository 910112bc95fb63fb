"""The retry policy of an evaluation's rows, and tenacity only once a row fails.

The default policy retries what :func:`dotevals.llm.retries.is_retryable` says is
worth another try: connection errors and timeouts, and HTTP 408, 409, 429 and 5xx
from openai, anthropic, httpx, requests and aiohttp (never 400, 401, 403, 404),
recognised without importing those libraries. It waits as long as the error's
``Retry-After`` (or ``retry-after-ms``) header says, at most a minute, and
otherwise backs off exponentially with jitter.

A row's first attempt is a plain call: retries cost nothing until a row
raises. The default policy is therefore a small :class:`RetryPolicy` that
builds its tenacity ``Retrying`` when it is first needed, and tenacity (which
brings asyncio, and tornado where tornado is installed) is imported then, not
when an eval file is collected or a worker starts. A tenacity
``Retrying``/``AsyncRetrying`` given by the user is used as it is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Union

from dotevals.errors import ConfigurationError

if TYPE_CHECKING:
    import tenacity

__all__ = [
    "DEFAULT_RETRIES",
    "RETRIED_ERRORS",
    "Retries",
    "RetryPolicy",
    "as_async_retrying",
    "as_retrying",
    "last_attempt_error",
    "make_policy",
]

#: The builtin errors the default retry policy retries whatever raised them; it also
#: retries the HTTP libraries' errors that :func:`dotevals.llm.retries.is_retryable` names.
RETRIED_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
#: Retries after the first call by default: 3 calls in all.
DEFAULT_RETRIES = 2


class RetryPolicy:
    """``retries`` more calls after an error worth another try (a connection error, a
    timeout, HTTP 408, 409, 429 or 5xx: :func:`dotevals.llm.retries.is_retryable`),
    waiting what its ``Retry-After`` says (at most 60 s) or else with exponential
    jitter (about 1 s, 2 s, 4 s ... up to 30 s) between them.

    ``sleep`` is how a wait is made (``time.sleep``; async rows always wait
    with ``asyncio.sleep``).
    """

    def __init__(self, retries: int, sleep: Callable[[float], None] = time.sleep):
        self.retries = retries
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"RetryPolicy(retries={self.retries})"

    def retrying(self) -> tenacity.Retrying:
        """The policy as a tenacity ``Retrying``."""
        import tenacity

        from dotevals.llm.retries import is_retryable

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_retryable),
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=wait_for_retry_after,
            sleep=self.sleep,
            reraise=True,
        )


def wait_for_retry_after(state: tenacity.RetryCallState) -> float:
    """tenacity's wait: the failed attempt's ``Retry-After``, else exponential jitter."""
    from dotevals.llm.retries import wait_seconds

    outcome = state.outcome
    exc = outcome.exception() if outcome is not None and outcome.failed else None
    return wait_seconds(exc, state.attempt_number)


#: An evaluation's retry policy: dotevals' own, or a tenacity object given by the user.
Retries = Union[RetryPolicy, "tenacity.BaseRetrying"]


def _is_tenacity(value: object) -> bool:
    """``value`` is a tenacity retrying object (tenacity is then imported already)."""
    tenacity = sys.modules.get("tenacity")
    return tenacity is not None and isinstance(value, tenacity.BaseRetrying)


def make_policy(retries: int | tenacity.BaseRetrying | None) -> Retries:
    """The retry policy of one evaluation.

    An int is a number of retries of the errors worth another try; a tenacity
    ``Retrying`` is used as given; ``None`` is the default of 2 retries (3 calls).
    """
    if _is_tenacity(retries):
        return retries  # type: ignore[return-value]
    count = DEFAULT_RETRIES if retries is None else retries
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigurationError(
            f"retries must be a number >= 0 or a tenacity Retrying object, got {retries!r}"
        )
    return RetryPolicy(count)


def as_retrying(policy: Retries) -> tenacity.BaseRetrying:
    """The policy as a tenacity retrying object."""
    return policy.retrying() if isinstance(policy, RetryPolicy) else policy


def as_async_retrying(policy: Retries) -> tenacity.AsyncRetrying:
    """The same policy, for coroutines."""
    import tenacity

    retrying = as_retrying(policy)
    if isinstance(retrying, tenacity.AsyncRetrying):
        return retrying
    return tenacity.AsyncRetrying(
        stop=retrying.stop,
        wait=retrying.wait,
        retry=retrying.retry,
        before=retrying.before,
        after=retrying.after,
        before_sleep=retrying.before_sleep,
        reraise=retrying.reraise,
        retry_error_callback=retrying.retry_error_callback,
        retry_error_cls=retrying.retry_error_cls,
        enabled=retrying.enabled,
    )


def last_attempt_error(exc: BaseException) -> BaseException:
    """The error of a row's last attempt: ``exc``, or what a ``RetryError`` wraps."""
    tenacity = sys.modules.get("tenacity")
    if tenacity is not None and isinstance(exc, tenacity.RetryError) and exc.last_attempt.failed:
        return exc.last_attempt.exception() or exc
    return exc
