"""How the rows of one evaluation are scheduled.

Async strategies run row coroutines on the event loop; sync strategies run
row calls in the calling thread. Each takes an iterable of zero-argument
callables (one per row, produced lazily) and yields their results as they
finish. A row's result is a :class:`~dotevals.models.Record`; the adaptive
strategy reads ``Record.failed`` to back off when rows start failing.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from dotevals.errors import ConfigurationError

__all__ = [
    "AsyncStrategy",
    "SyncStrategy",
    "SlidingWindow",
    "Adaptive",
    "AsyncSequential",
    "Sequential",
    "Batch",
]

T = TypeVar("T")


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {value!r}")


class SyncStrategy(ABC):
    """Schedules plain function rows."""

    #: Rows handed out together (to a worker process when there are workers).
    batch_size: int | None = None

    @abstractmethod
    def run(self, tasks: Iterable[Callable[[], T]]) -> Iterator[T]:
        """Call every task; yield the results in order."""


class Sequential(SyncStrategy):
    """One row after another (the default for sync evaluations)."""

    def run(self, tasks: Iterable[Callable[[], T]]) -> Iterator[T]:
        for task in tasks:
            yield task()


class Batch(SyncStrategy):
    """Rows in batches of ``batch_size``: results are released batch by batch."""

    def __init__(self, batch_size: int = 32):
        _positive("Batch(batch_size)", batch_size)
        self.batch_size = batch_size

    def run(self, tasks: Iterable[Callable[[], T]]) -> Iterator[T]:
        batch: list[Callable[[], T]] = []
        for task in tasks:
            batch.append(task)
            if len(batch) == self.batch_size:
                yield from [t() for t in batch]
                batch = []
        yield from [t() for t in batch]


class AsyncStrategy(ABC):
    """Schedules coroutine rows on the running event loop."""

    @abstractmethod
    def run(self, tasks: Iterable[Callable[[], Awaitable[T]]]) -> AsyncIterator[T]:
        """Await every task; yield results as they complete."""


class _Windowed(AsyncStrategy):
    """Keeps up to ``limit()`` rows in flight, taking new ones as others finish."""

    def limit(self) -> int:
        raise NotImplementedError

    def observe(self, result: Any) -> None:
        """Called with every finished row's result."""

    async def run(self, tasks: Iterable[Callable[[], Awaitable[T]]]) -> AsyncIterator[T]:
        pending: set[asyncio.Future[T]] = set()
        source = iter(tasks)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.limit():
                    task = next(source, None)
                    if task is None:
                        exhausted = True
                    else:
                        pending.add(asyncio.ensure_future(task()))
                if not pending:
                    return
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    self.observe(result)
                    yield result
        finally:
            for future in pending:
                future.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)


class SlidingWindow(_Windowed):
    """At most ``max_concurrency`` rows in flight at any time."""

    def __init__(self, max_concurrency: int = 10):
        _positive("SlidingWindow(max_concurrency)", max_concurrency)
        self.max_concurrency = max_concurrency

    def limit(self) -> int:
        return self.max_concurrency


class AsyncSequential(_Windowed):
    """One row at a time."""

    def limit(self) -> int:
        return 1


class Adaptive(_Windowed):
    """Finds the concurrency a model endpoint sustains (the default for async).

    Starts at ``initial_concurrency``; every ``adjustment_interval`` seconds it
    compares throughput with the previous interval: while throughput rises the
    limit is multiplied by ``increase_factor`` (up to ``max_concurrency``); when
    it falls clearly the limit steps back; when more than ``error_threshold`` of
    the interval's rows failed it is multiplied by ``backoff_factor``.
    """

    def __init__(
        self,
        initial_concurrency: int = 8,
        max_concurrency: int = 1024,
        min_concurrency: int = 1,
        adjustment_interval: float = 0.1,
        increase_factor: float = 2.0,
        backoff_factor: float = 0.5,
        error_threshold: float = 0.1,
    ):
        for name, value in [
            ("initial_concurrency", initial_concurrency),
            ("max_concurrency", max_concurrency),
            ("min_concurrency", min_concurrency),
        ]:
            _positive(f"Adaptive({name})", value)
        if not min_concurrency <= initial_concurrency <= max_concurrency:
            raise ConfigurationError(
                "Adaptive needs min_concurrency <= initial_concurrency <= max_concurrency"
            )
        if (
            adjustment_interval <= 0
            or increase_factor <= 1
            or not 0 < backoff_factor < 1
            or not 0 <= error_threshold <= 1
        ):
            raise ConfigurationError(
                "Adaptive needs adjustment_interval > 0, increase_factor > 1, "
                "0 < backoff_factor < 1 and 0 <= error_threshold <= 1"
            )
        self.initial_concurrency = initial_concurrency
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        self.adjustment_interval = adjustment_interval
        self.increase_factor = increase_factor
        self.backoff_factor = backoff_factor
        self.error_threshold = error_threshold
        self.current = initial_concurrency
        self._window_start = 0.0
        self._done = 0
        self._failed = 0
        self._last_throughput = 0.0

    async def run(self, tasks: Iterable[Callable[[], Awaitable[T]]]) -> AsyncIterator[T]:
        self.current = self.initial_concurrency
        self._window_start = time.monotonic()
        self._done = self._failed = 0
        self._last_throughput = 0.0
        async for result in super().run(tasks):
            yield result

    def limit(self) -> int:
        return self.current

    def observe(self, result: Any) -> None:
        self._done += 1
        self._failed += bool(getattr(result, "failed", False))
        elapsed = time.monotonic() - self._window_start
        if elapsed >= self.adjustment_interval:
            self._adjust(self._done / elapsed, self._failed / self._done)
            self._window_start = time.monotonic()
            self._done = self._failed = 0

    def _adjust(self, throughput: float, error_rate: float) -> None:
        if error_rate > self.error_threshold:
            target = self.current * self.backoff_factor
        elif throughput >= self._last_throughput * 1.05:
            target = self.current * self.increase_factor
        elif throughput < self._last_throughput * 0.8:
            target = self.current / self.increase_factor
        else:
            target = self.current
        self.current = int(min(self.max_concurrency, max(self.min_concurrency, target)))
        self._last_throughput = throughput
