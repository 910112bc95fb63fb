"""Main side of the process pool: its lifetime and the ordered, bounded stream of rows.

One loky process pool serves every sync evaluation of a run. Rows go out in
chunks whose size follows how long rows take (about ``CHUNK_SECONDS`` of work
per chunk), at most ``2 x workers`` chunks are in flight, and results come
back in dataset order: the stream awaits the oldest chunk first. A generator
of any length therefore runs in flat memory.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from importlib.machinery import PathFinder
from itertools import islice
from typing import Any

import cloudpickle
from loky import ProcessPoolExecutor

from dotevals.engine import worker
from dotevals.errors import ConfigurationError, DatasetError
from dotevals.models import Record

__all__ = ["WorkerPool", "ChunkSizer"]

CHUNK_SECONDS = 0.05
MAX_CHUNK = 2000


class ChunkSizer:
    """Rows per chunk: enough to amortise inter-process overhead, few enough to balance."""

    def __init__(self, fixed: int | None = None, initial: int = 4):
        self.fixed = fixed
        self.size = fixed or initial
        self._row_seconds: float | None = None

    def observe(self, rows: int, seconds: float) -> None:
        if self.fixed or rows == 0:
            return
        per_row = max(seconds / rows, 1e-7)
        self._row_seconds = (
            per_row if self._row_seconds is None else 0.7 * self._row_seconds + 0.3 * per_row
        )
        self.size = max(1, min(MAX_CHUNK, round(CHUNK_SECONDS / self._row_seconds)))


class WorkerPool:
    """A loky process pool for one run, started on first use."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None

    @property
    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                initializer=worker.initialize,
                initargs=(list(sys.path), os.getcwd()),
            )
        return self._executor

    def shutdown(self, kill: bool = False) -> None:
        """Stop the workers; they tear their fixtures down as they exit."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, kill_workers=kill)
            self._executor = None

    async def stream(
        self,
        name: str,
        payload: worker.Payload,
        rows: Iterator[tuple[int, dict[str, Any] | DatasetError]],
        sink: Callable[[Record], None],
        chunk_size: int | None = None,
    ) -> None:
        """Score ``rows`` in the workers; give every Record to ``sink`` in dataset order."""
        packed = pack_payload(name, payload)
        evaluation_id = uuid.uuid4().hex
        sizer = ChunkSizer(fixed=chunk_size)
        in_flight: deque[tuple[asyncio.Future[Any], int]] = deque()
        window = 2 * self.workers
        exhausted = False
        try:
            while True:
                while not exhausted and len(in_flight) < window:
                    chunk = list(islice(rows, sizer.size))
                    if not chunk:
                        exhausted = True
                        break
                    future = self.executor.submit(
                        worker.run_chunk, evaluation_id, packed, pack_rows(chunk)
                    )
                    in_flight.append((asyncio.wrap_future(future), len(chunk)))
                if not in_flight:
                    return
                future, size = in_flight.popleft()
                records, seconds = await future
                sizer.observe(size, seconds)
                for record in records:
                    sink(record)
        finally:
            for future, _ in in_flight:
                future.cancel()


def pack_payload(name: str, payload: worker.Payload) -> bytes:
    """Pickle an evaluation for the workers, naming what cannot be sent."""
    for func in [payload.func, *(spec.func for spec in payload.specs.values())]:
        _send_module_by_value(func)
    try:
        return cloudpickle.dumps(payload)
    except Exception as exc:
        parts = {"the evaluation function": payload.func, "its retry policy": payload.retrying}
        parts.update({f"fixture {n!r}": spec.func for n, spec in payload.specs.items()})
        parts.update({f"fixture value {n!r}": value for n, value in payload.values.items()})
        culprit = next((label for label, obj in parts.items() if not _pickles(obj)), "it")
        raise ConfigurationError(
            f"{name}: {culprit} cannot be sent to worker processes ({type(exc).__name__}: "
            f"{exc}); make it picklable, create it inside a fixture, or run without --workers"
        ) from None


def pack_rows(chunk: list[tuple[int, Any]]) -> bytes:
    """Pickle a chunk; a row that cannot be pickled goes as that row's error."""
    try:
        return cloudpickle.dumps(chunk)
    except Exception:
        return cloudpickle.dumps([(item_id, _sendable(item_id, row)) for item_id, row in chunk])


def _sendable(item_id: int, row: Any) -> Any:
    try:
        cloudpickle.dumps(row)
    except Exception as exc:
        return DatasetError(
            f"row {item_id} cannot be sent to a worker process ({type(exc).__name__}: {exc})"
        )
    return row


def _send_module_by_value(func: Any) -> None:
    """Eval files and conftests pytest imported under names a worker cannot import
    (``--import-mode=importlib``, files outside any package) travel by value."""
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return
    top = module.__name__.partition(".")[0]
    if top not in sys.builtin_module_names and PathFinder.find_spec(top, sys.path) is None:
        cloudpickle.register_pickle_by_value(module)


def _pickles(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:
        return False
    return True
