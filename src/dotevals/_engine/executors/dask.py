"""A Dask distributed cluster as the executor, ``--executor dask://HOST:PORT``.

Chunks of rows are Dask tasks; their results come back in dataset order
through the same stream as with local workers. The cluster says how many
rows can run at once (its worker threads). Each Dask worker process keeps
its own fixtures, created once on first use and torn down when the run ends.
A worker lost while running a row is replaced by the cluster; Dask gives up
on a task whose workers keep dying (``KilledWorker``), and the stream then
blames the row that did it. A hung row makes the cluster restart its workers.
A lost scheduler, or workers that do not come back from that restart, stop
the evaluation with a ``ClusterLostError``; what was stored stays.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from dotevals._engine.executors.base import Executor
from dotevals._engine.worker import process as worker
from dotevals._run.loop_free import on_a_loop_of_its_own
from dotevals.errors import ClusterLostError, ConfigurationError

try:
    import dask.config
    import distributed
    from dask.utils import parse_timedelta

    HAS_DISTRIBUTED = True
except ImportError:  # pragma: no cover - depends on the environment
    HAS_DISTRIBUTED = False

__all__ = ["DaskPool", "connect_timeout"]

#: Seconds to wait for the scheduler unless Dask's own setting says otherwise.
CONNECT_TIMEOUT = 10.0
CONNECT_SETTING = "distributed.comm.timeouts.connect"
TEARDOWN_TIMEOUT = 60
RESUME = (
    "the rows finished so far are stored: once the cluster works again, rerun the same "
    "experiment to resume"
)


class DaskPool(Executor):
    """The worker threads of a Dask cluster, reached through its scheduler."""

    remote = True

    def __init__(self, address: str):
        if not HAS_DISTRIBUTED:
            raise ConfigurationError(
                f"--executor {address} needs Dask's distributed package: "
                'pip install "dotevals[dask]"'
            )
        self.address = address
        tcp = address.replace("dask://", "tcp://", 1)
        timeout = connect_timeout()
        try:
            _shake_hands(tcp, timeout)
            self.client = distributed.Client(tcp, timeout=timeout)
        except distributed.comm.CommClosedError:
            raise ConfigurationError(
                f"{address} is not a Dask scheduler: it closed the connection at Dask's "
                "handshake; give the scheduler's address (the 'Scheduler at' line "
                "'dask scheduler' prints)"
            ) from None
        except OSError as exc:
            reason = str(exc) or f"no answer from a Dask scheduler there within {timeout:g} s"
            raise ConfigurationError(
                f"cannot reach the Dask scheduler at {address} ({reason}); start it with "
                "'dask scheduler' and its workers with 'dask worker ADDRESS'"
            ) from None
        threads = self.client.nthreads()
        if not threads:
            self.client.close()
            raise ConfigurationError(f"the Dask scheduler at {address} has no workers")
        self.processes = len(threads)
        self.slots = sum(threads.values())
        self.died = (distributed.KilledWorker,)

    def describe(self) -> str:
        return (
            f"dotevals: {self.slots} worker{'s' if self.slots != 1 else ''} on "
            f"{self.address} ({self.processes} worker process"
            f"{'es' if self.processes != 1 else ''}, {self.slots} thread"
            f"{'s' if self.slots != 1 else ''}, as the cluster reports)"
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
            except (OSError, CancelledError):  # a row's own errors come back as records
                loop.call_soon_threadsafe(_set, result, None, self._lost())
            except BaseException as exc:  # handed to the awaiting side
                loop.call_soon_threadsafe(_set, result, None, exc)
            else:
                loop.call_soon_threadsafe(_set, result, value, None)

        def forget(settled: asyncio.Future[Any]) -> None:
            if settled.cancelled() and self.client.status == "running":
                task.cancel()

        task.add_done_callback(settle)
        result.add_done_callback(forget)
        return result

    def _lost(self) -> ClusterLostError:
        return ClusterLostError(
            f"the connection to the Dask scheduler at {self.address} was lost mid-run; {RESUME}"
        )

    def replace(self, hung: bool) -> None:
        """The cluster replaces a dead worker itself; a hung row can only be stopped by
        restarting the workers."""
        if not hung:
            return
        try:
            self.client.restart()
        except (asyncio.TimeoutError, OSError) as exc:
            raise ClusterLostError(
                f"the Dask cluster at {self.address} did not bring its workers back after "
                f"restarting them to stop a hung row ({type(exc).__name__}"
                f"{': ' + str(exc) if str(exc) else ''}); {RESUME}"
            ) from None

    def shutdown(self, kill: bool = False) -> list[str]:
        """Tear down the fixtures of every worker (a task pinned to each), then disconnect.

        Without a scheduler there is nobody to ask: the workers' fixtures go with them.
        """
        if self.client.status != "running":
            self.client.close(timeout=TEARDOWN_TIMEOUT)
            return []
        errors: list[str] = []
        try:
            teardowns = [
                self.client.submit(
                    worker.close_fixtures,
                    workers=[address],
                    allow_other_workers=False,
                    pure=False,
                )
                for address in self.client.nthreads()
            ]
            for address, teardown in zip(self.client.nthreads(), teardowns, strict=False):
                try:
                    error = teardown.result(timeout=TEARDOWN_TIMEOUT)
                except Exception as exc:  # the worker itself failed: its fixtures went with it
                    warnings.warn(
                        f"dotevals: tearing down fixtures on Dask worker {address} failed: "
                        f"{type(exc).__name__}: {exc}",
                        stacklevel=2,
                    )
                    continue
                if error is not None:
                    errors.append(error)
        finally:
            self.client.close()
        return errors

    def how_died(self, exc: BaseException) -> str:
        return "Dask lost every worker it ran this row on and gave up"


def connect_timeout() -> float:
    """Seconds to wait for the scheduler: Dask's ``distributed.comm.timeouts.connect``
    when it is set (a Dask config file, ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``),
    else ``CONNECT_TIMEOUT``."""
    value = dask.config.get(CONNECT_SETTING)
    default = dask.config.get(CONNECT_SETTING, config=dask.config.merge(*dask.config.defaults))
    return CONNECT_TIMEOUT if value == default else parse_timedelta(value, "s")


def _shake_hands(address: str, timeout: float) -> None:
    """Connect to ``address`` and exchange Dask's handshake, all within ``timeout`` s.

    A port where something else listens accepts the connection but never answers
    the handshake, which Dask's client would wait for without end.
    """

    async def shake() -> None:
        comm = await distributed.comm.connect(address, timeout=timeout)
        await comm.close()

    on_a_loop_of_its_own(asyncio.wait_for(shake(), timeout))


def _set(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
