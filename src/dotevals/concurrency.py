"""How the rows of one evaluation are scheduled.

Async strategies run row coroutines on the event loop; sync strategies run
row calls in the calling thread. Each takes an iterable of zero-argument
callables (one per row, produced lazily) and yields their results as they
finish. A row's result is a :class:`~dotevals.models.Record`; the adaptive
strategy reads ``Record.failed`` to back off when rows start failing.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from dotevals.errors import ConfigurationError

if TYPE_CHECKING:
    import asyncio

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
        import asyncio  # here, not above: a run of sync rows has no event loop

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

    Starts at ``initial_concurrency`` rows in flight. Every ``adaptation_interval``
    seconds it measures throughput (rows per second over the interval, or over
    the last ``throughput_window`` finished rows when that is set) and compares
    it with the previous measure:

    * more than ``error_threshold`` of the interval's rows failed: the limit is
      multiplied by ``error_backoff_factor``;
    * throughput above ``increase_threshold`` times the previous one: the limit
      is multiplied by ``increase_factor``;
    * below ``decrease_threshold`` times the previous one: it is divided by
      ``increase_factor``;
    * in between (steady): the limit is multiplied by ``increase_factor`` to
      probe for more, but never past a limit at which rows failed;

    a rise, a fall or a steady spell changes the limit once it has been seen
    ``stability_window`` times in a row. The interval after a decrease is the
    baseline of the lower limit, not compared with the interval before: fewer
    rows in flight lower the throughput, which is no new fall. The limit stays
    within ``min_concurrency`` and ``max_concurrency``.
    """

    def __init__(
        self,
        initial_concurrency: int = 8,
        min_concurrency: int = 1,
        max_concurrency: int = 1024,
        adaptation_interval: float = 0.1,
        throughput_window: int | None = None,
        increase_threshold: float = 1.05,
        decrease_threshold: float = 0.8,
        stability_window: int = 1,
        error_backoff_factor: float = 0.5,
        *,
        increase_factor: float = 2.0,
        error_threshold: float = 0.1,
    ):
        for name, value in [
            ("initial_concurrency", initial_concurrency),
            ("max_concurrency", max_concurrency),
            ("min_concurrency", min_concurrency),
            ("stability_window", stability_window),
        ]:
            _positive(f"Adaptive({name})", value)
        if throughput_window is not None and (
            isinstance(throughput_window, bool)
            or not isinstance(throughput_window, int)
            or throughput_window < 2
        ):
            raise ConfigurationError(
                "Adaptive(throughput_window) must be None or a whole number >= 2 (rows), "
                f"got {throughput_window!r}"
            )
        if not min_concurrency <= initial_concurrency <= max_concurrency:
            raise ConfigurationError(
                "Adaptive needs min_concurrency <= initial_concurrency <= max_concurrency"
            )
        if (
            adaptation_interval <= 0
            or increase_factor <= 1
            or not 0 < error_backoff_factor < 1
            or not 0 <= error_threshold <= 1
            or not 0 < decrease_threshold <= increase_threshold
        ):
            raise ConfigurationError(
                "Adaptive needs adaptation_interval > 0, increase_factor > 1, "
                "0 < error_backoff_factor < 1, 0 <= error_threshold <= 1 and "
                "0 < decrease_threshold <= increase_threshold"
            )
        self.initial_concurrency = initial_concurrency
        self.min_concurrency = min_concurrency
        self.max_concurrency = max_concurrency
        self.adaptation_interval = adaptation_interval
        self.throughput_window = throughput_window
        self.increase_threshold = increase_threshold
        self.decrease_threshold = decrease_threshold
        self.stability_window = stability_window
        self.error_backoff_factor = error_backoff_factor
        self.increase_factor = increase_factor
        self.error_threshold = error_threshold
        self.current = initial_concurrency
        self._reset_measures()

    def _reset_measures(self) -> None:
        self._window_start = time.monotonic()
        self._done = self._failed = 0
        self._last_throughput = 0.0
        self._finished: deque[float] = deque(maxlen=self.throughput_window)
        self._trend = 0  # +1 rising, -1 falling, 0 steady
        self._trend_seen = 0
        self._settling = False  # the limit was just lowered: the next interval is a baseline
        self._ceiling: int | None = None  # a limit at which rows failed: no probing past it

    async def run(self, tasks: Iterable[Callable[[], Awaitable[T]]]) -> AsyncIterator[T]:
        self.current = self.initial_concurrency
        self._reset_measures()
        async for result in super().run(tasks):
            yield result

    def limit(self) -> int:
        return self.current

    def observe(self, result: Any) -> None:
        now = time.monotonic()
        self._done += 1
        self._failed += bool(getattr(result, "failed", False))
        self._finished.append(now)
        elapsed = now - self._window_start
        if elapsed >= self.adaptation_interval:
            self._adjust(self._throughput(elapsed), self._failed / self._done)
            self._window_start = now
            self._done = self._failed = 0

    def _throughput(self, elapsed: float) -> float:
        """Rows per second over the last ``throughput_window`` rows, else the interval."""
        span = self._finished[-1] - self._finished[0]
        if self.throughput_window is None or span <= 0:
            return self._done / elapsed
        return (len(self._finished) - 1) / span

    def _adjust(self, throughput: float, error_rate: float) -> None:
        previous, self._last_throughput = self._last_throughput, throughput
        if error_rate > self.error_threshold:
            self._ceiling = self.current
            self._change(self.current * self.error_backoff_factor)
            return
        if self._settling:
            self._settling = False
            return
        trend = (throughput > previous * self.increase_threshold) - (
            throughput < previous * self.decrease_threshold
        )
        self._trend_seen = self._trend_seen + 1 if trend == self._trend else 1
        self._trend = trend
        if self._trend_seen < self.stability_window:
            return
        if trend:
            self._change(self.current * self.increase_factor**trend)
        elif self._ceiling is None or self.current < self._ceiling:
            probe = self.current * self.increase_factor
            self._change(probe if self._ceiling is None else min(probe, self._ceiling))

    def _change(self, target: float) -> None:
        limit = int(min(self.max_concurrency, max(self.min_concurrency, target)))
        self._settling = limit < self.current
        self.current = limit
        self._trend = self._trend_seen = 0
