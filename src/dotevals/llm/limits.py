"""Rate limits per model, shared by every evaluation of the process that calls it.

Each model key (the server's base URL and the model's name) has one
:class:`ModelLimiter` per process (:func:`limiter_for`), whatever evaluation, fixture
or provider instance calls it. It bounds three things:

- **requests per minute**: spaced evenly, so that no minute (any 60 s, not only the
  clock's) holds more than ``rpm`` requests. aiolimiter's leaky bucket holds ``b``
  requests, a tenth of a second's worth (at least 1), and drains ``rpm - b + 1`` a
  minute: a request that starts late (a busy event loop) is made up for at once,
  and ``b`` at once plus the rest of a minute's drain is still ``rpm``. The first
  request fills the bucket, so that a run starts at the steady rate, not with a burst. Below 1200 a
  minute that is one request every ``60 / rpm`` seconds;
- **tokens per minute**: a bucket of a minute's tokens (aiolimiter), charged with an
  estimate before the request (a quarter of the prompt's characters plus
  ``max_tokens``) and with the rest of the real usage after it;
- **concurrent requests**: at most ``limit`` in flight. The limit adapts (AIMD): a
  429 answer halves it (at most once a second, so that one burst of 429s counts
  once), and every ``limit`` successes in a row raise it by one, up to the
  ``concurrency`` given. A 429's ``Retry-After`` pauses this model's requests, and
  only this model's, until it has passed.

The limiter runs on the process's model-call loop (:mod:`dotevals.llm._loop`), where
every call of the provider runs; the progress bar reads its live ``limit`` and its
count of 429s from the records.

With worker processes (``--workers N``) each worker has its own limiters: the limits
given are split evenly between the workers of the local pool (each gets ``rpm / N``,
``tpm / N`` and ``concurrency / N`` rounded up), so that together they keep them.
Workers of a Dask cluster are not counted: there the limits hold per worker.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections import deque
from dataclasses import dataclass
from typing import Any

from dotevals.llm.settings import WORKERS_VARIABLE

__all__ = ["DEFAULT_CONCURRENCY", "WORKERS_VARIABLE", "Limits", "ModelLimiter", "limiter_for"]

#: Requests one model has in flight at most, unless told otherwise.
DEFAULT_CONCURRENCY = 32
#: A 429 halves the concurrency limit at most once per this many seconds.
DECREASE_GAP = 1.0


@dataclass(frozen=True)
class Limits:
    """The limits of one model: requests and tokens per minute (None: no limit) and
    the most requests in flight at once."""

    rpm: float | None = None
    tpm: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        from dotevals.errors import ConfigurationError

        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ConfigurationError(f"{name} must be a number > 0, got {value!r}")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int):
            raise ConfigurationError(
                f"concurrency must be a whole number, got {self.concurrency!r}"
            )
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency!r}")

    def per_process(self) -> Limits:
        """The share of one worker process of the local pool (see the module docstring)."""
        try:
            workers = int(os.environ.get(WORKERS_VARIABLE, "1"))
        except ValueError:
            workers = 1
        if workers <= 1:
            return self
        return Limits(
            None if self.rpm is None else self.rpm / workers,
            None if self.tpm is None else self.tpm / workers,
            max(1, math.ceil(self.concurrency / workers)),
        )

    def tightest(self, other: Limits) -> Limits:
        """The lower of each limit of ``self`` and ``other``."""

        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)

        return Limits(
            low(self.rpm, other.rpm),
            low(self.tpm, other.tpm),
            min(self.concurrency, other.concurrency),
        )


class ModelLimiter:
    """The limits of one model key in this process (see the module docstring).

    Use it on one event loop: the provider's calls all run on the model-call loop.
    """

    def __init__(self, key: str, limits: Limits):
        self.key = key
        self.limits = limits
        #: The live concurrency limit (AIMD), at most ``limits.concurrency``.
        self.limit = limits.concurrency
        self.in_flight = 0
        #: 429 answers seen.
        self.rate_limited = 0
        #: Loop time before which no request of this model starts (a Retry-After).
        self.paused_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._successes = 0
        self._last_decrease = -math.inf
        self._requests: Any = None
        self._tokens: Any = None
        self._fresh = True
        self._set_rates(limits)

    def __repr__(self) -> str:
        return (
            f"<ModelLimiter {self.key!r} limit={self.limit} in_flight={self.in_flight} "
            f"429s={self.rate_limited}>"
        )

    def _set_rates(self, limits: Limits) -> None:
        from aiolimiter import AsyncLimiter

        self._requests = None
        if limits.rpm is not None:
            burst = max(1, int(limits.rpm / 600))  # a tenth of a second's requests
            drained = max(limits.rpm - burst + 1, 1e-9)  # per minute, so that any 60 s hold rpm
            self._requests = AsyncLimiter(burst, 60.0 * burst / drained)
        self._tokens = None if limits.tpm is None else AsyncLimiter(limits.tpm, 60.0)

    def tighten(self, limits: Limits) -> None:
        """Keep the lower of the limits already set and ``limits``."""
        merged = self.limits.tightest(limits)
        if merged == self.limits:
            return
        if (merged.rpm, merged.tpm) != (self.limits.rpm, self.limits.tpm):
            self._set_rates(merged)
        self.limits = merged
        self.limit = min(self.limit, merged.concurrency)

    # taking and giving back a place -----------------------------------------
    async def acquire(self, tokens: int = 0) -> None:
        """Wait for this model's pause, a concurrency slot, the request rate and
        ``tokens`` of the token rate; the caller then sends one request and calls
        :meth:`release` once it has its answer (or error)."""
        await self._wait_out_pause()
        await self._take_slot()
        try:
            if self._requests is not None:
                # the first request fills the bucket: a run starts at the steady rate, and
                # the bucket's depth only makes up for requests that start late
                await self._requests.acquire(self._requests.max_rate if self._fresh else 1)
                self._fresh = False
            if self._tokens is not None and tokens > 0:
                await self._tokens.acquire(min(tokens, self._tokens.max_rate))
            await self._wait_out_pause()  # a 429 may have come in meanwhile
        except BaseException:
            self._give_back_slot()
            raise

    def release(self, succeeded: bool) -> None:
        """The request is over; a success counts towards raising the limit."""
        if succeeded:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.limits.concurrency:
                self.limit += 1
                self._successes = 0
        self._give_back_slot()

    def charge(self, tokens: int) -> None:
        """Tokens used beyond the estimate: charged to the token rate in the background."""
        if self._tokens is None or tokens <= 0:
            return
        task = asyncio.get_running_loop().create_task(
            self._tokens.acquire(min(tokens, self._tokens.max_rate))
        )
        _background.add(task)
        task.add_done_callback(_background.discard)

    def too_many_requests(self, retry_after: float | None) -> None:
        """A 429: halve the limit (once per :data:`DECREASE_GAP`) and pause the model for
        ``retry_after`` seconds when given."""
        now = asyncio.get_running_loop().time()
        self.rate_limited += 1
        self._successes = 0
        if now - self._last_decrease >= DECREASE_GAP:
            self.limit = max(1, self.limit // 2)
            self._last_decrease = now
        if retry_after is not None and retry_after > 0:
            self.paused_until = max(self.paused_until, now + retry_after)

    # internals ----------------------------------------------------------------
    async def _wait_out_pause(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self.paused_until - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def _take_slot(self) -> None:
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved: a slot was taken for this caller
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back_slot()
            raise

    def _give_back_slot(self) -> None:
        self.in_flight -= 1
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled caller's waiter is left behind
                self.in_flight += 1
                waiter.set_result(None)


_background: set[asyncio.Task[Any]] = set()
#: The limiters of this process, by model key (with the pid they were made in).
_LIMITERS: dict[str, ModelLimiter] = {}
_PID = os.getpid()


def limiter_for(key: str, limits: Limits) -> ModelLimiter:
    """The process's limiter of the model ``key``, made with ``limits`` on first use;
    a later caller's lower limits tighten it (the lowest given wins)."""
    global _PID
    if os.getpid() != _PID:  # a forked child: its parent's limiters are not its own
        _LIMITERS.clear()
        _PID = os.getpid()
    limiter = _LIMITERS.get(key)
    if limiter is None:
        limiter = _LIMITERS[key] = ModelLimiter(key, limits)
    else:
        limiter.tighten(limits)
    return limiter
