"""A Dask distributed cluster as the executor: ``--executor dask://HOST:PORT``.

Chunks of rows are Dask tasks; their results come back in dataset order
through the same stream as with local workers. The cluster says how many
rows can run at once (its worker threads). Each Dask worker process keeps
its own fixtures, created once on first use and torn down when the run ends.
A worker lost while running a row is replaced by the cluster; Dask gives up
on a task whose workers keep dying (``KilledWorker``), and the stream then
blames the row that did it. A hung row makes the cluster restart its workers.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

from dotevals.engine import worker
from dotevals.engine.stream import Executor
from dotevals.errors import ConfigurationError

try:
    import distributed
except ImportError:  # pragma: no cover - depends on the environment
    distributed = None

__all__ = ["DaskPool"]

CONNECT_TIMEOUT = "10s"
TEARDOWN_TIMEOUT = 60


class DaskPool(Executor):
    """The worker threads of a Dask cluster, reached through its scheduler."""

    remote = True

    def __init__(self, address: str):
        if distributed is None:
            raise ConfigurationError(
                f"--executor {address} needs Dask's distributed package: "
                'pip install "dotevals[dask]"'
            )
        self.address = address
        try:
            self.client = distributed.Client(
                address.replace("dask://", "tcp://", 1), timeout=CONNECT_TIMEOUT
            )
        except OSError as exc:
            raise ConfigurationError(
                f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
                "'dask scheduler' and its workers with 'dask worker ADDRESS'"
            ) from None
        threads = self.client.nthreads()
        if not threads:
            self.client.close()
            raise ConfigurationError(f"the Dask scheduler at {address} has no workers")
        self.processes = len(threads)
        self.workers = sum(threads.values())
        self.died = (distributed.KilledWorker,)

    def describe(self) -> str:
        return (
            f"dotevals: {self.workers} worker{'s' if self.workers != 1 else ''} on "
            f"{self.address} ({self.processes} worker process"
            f"{'es' if self.processes != 1 else ''}, {self.workers} thread"
            f"{'s' if self.workers != 1 else ''}, as the cluster reports)"
        )

    def start(self) -> None:
        """The cluster's workers are running already."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        task = self.client.submit(fn, *args, pure=False)

        def settle(done: Any) -> None:  # runs in a thread of Dask's, where it may block
            try:
                value = done.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
                loop.call_soon_threadsafe(_set, result, None, exc)
            else:
                loop.call_soon_threadsafe(_set, result, value, None)

        task.add_done_callback(settle)
        result.add_done_callback(lambda r: task.cancel() if r.cancelled() else None)
        return result

    def replace(self, hung: bool) -> None:
        """The cluster replaces a dead worker itself; a hung row can only be stopped by
        restarting the workers."""
        if hung:
            self.client.restart()

    def shutdown(self, kill: bool = False) -> None:
        """Tear down the fixtures of every worker (a task pinned to each), then disconnect."""
        try:
            teardowns = [
                self.client.submit(
                    worker.close_fixtures, workers=[address], allow_other_workers=False, pure=False
                )
                for address in self.client.nthreads()
            ]
            for address, teardown in zip(self.client.nthreads(), teardowns, strict=False):
                try:
                    teardown.result(timeout=TEARDOWN_TIMEOUT)
                except Exception as exc:  # noqa: BLE001 - one worker's teardown, reported
                    warnings.warn(
                        f"dotevals: tearing down fixtures on Dask worker {address} failed: "
                        f"{type(exc).__name__}: {exc}",
                        stacklevel=2,
                    )
        finally:
            self.client.close()

    def how_died(self, exc: BaseException) -> str:
        return "Dask lost every worker it ran this row on and gave up"


def _set(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
