"""The interface of an executor, where the stream's chunks of rows run.

An executor only starts workers, submits calls and says how a worker died;
the stream (:mod:`dotevals._engine.stream`) does the rest. Two implement
it: :mod:`dotevals._engine.executors.local` (loky processes on this machine)
and :mod:`dotevals._engine.executors.dask` (the worker threads of a Dask cluster).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dotevals.errors import WorkerDiedError

if TYPE_CHECKING:
    import asyncio

__all__ = ["Executor"]


class Executor(ABC):
    """Where chunks run: ``slots`` rows at once, on workers replaced when one fails."""

    #: How many rows can run at once (worker processes locally, threads on Dask).
    slots: int
    #: Whether workers run elsewhere, with only installed packages importable.
    remote: bool = False
    #: Exceptions meaning the worker running a call died.
    died: tuple[type[BaseException], ...] = ()
    #: Workers per CPU when there are more workers than CPUs (1.0 otherwise): each
    #: runs at that fraction of a CPU, and its rows take that much longer.
    contention: float = 1.0

    def describe(self) -> str:
        """The one-line notice a run gives about where its rows go."""
        return f"dotevals: {self.slots} worker{'s' if self.slots != 1 else ''}"

    @abstractmethod
    def start(self) -> None:
        """Start the workers now, without waiting for them."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` in a worker; the result arrives on the running loop."""

    @abstractmethod
    def replace(self, hung: bool) -> None:
        """A worker died (or hung, when ``hung``): new calls must go to sound workers."""

    @abstractmethod
    def shutdown(self, kill: bool = False) -> list[str]:
        """Stop the workers; they tear their fixtures down as they go (unless ``kill``).
        The errors of the teardowns that raised, each with its traceback."""

    def survivors(self) -> set[int] | None:
        """The pids of the workers still alive when a worker's death broke the pool, until
        the workers are replaced (None: not known; the stream then suspects every chunk
        that was running)."""
        return None

    def how_died(self, exc: BaseException) -> str:
        """A few words on how the worker ended."""
        return type(exc).__name__

    def blame(self, exc: BaseException) -> Exception:
        """The error stored for the row whose call failed with ``exc`` (one of ``died``)."""
        return WorkerDiedError(f"the worker process scoring this row died ({self.how_died(exc)})")
