"""Local worker processes, a loky process pool for one run.

loky runs the workers (forked from a fork server under pytest, see
:mod:`~dotevals._engine.executors.fork_server`), reports precisely when one dies
and is replaced after that by a fresh pool. Workers start with this process's
``sys.path``, working directory and environment, so eval files and conftests
import there as here, and with its pid, so they leave as soon as it is gone. A
worker tears its fixtures down as it exits and leaves the error, if that raised,
in a folder of the pool, which the pool's shutdown reads (a folder the first
worker with an error makes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from loky import BrokenProcessPool, ProcessPoolExecutor, cpu_count
from loky.process_executor import TerminatedWorkerError

from dotevals._engine.executors import fork_server
from dotevals._engine.executors.base import Executor
from dotevals._engine.executors.sizing import WorkerCount
from dotevals._engine.worker import process as worker
from dotevals.errors import TransferError
from dotevals.llm.settings import WORKERS_VARIABLE

__all__ = ["LocalPool"]


class LocalPool(Executor):
    """A loky process pool of ``slots`` processes, started on first use.

    ``reason`` says why that many (see :class:`~dotevals._engine.executors.sizing.WorkerCount`).
    """

    died = (BrokenProcessPool,)

    def __init__(self, slots: int, reason: str = "as requested"):
        self.slots = slots
        self.reason = reason
        # the CPUs this process may use (affinity and container quotas counted)
        self.contention = max(1.0, slots / cpu_count())
        self._executor: ProcessPoolExecutor | None = None
        #: Where the workers of the running executor leave their teardown errors.
        self._teardowns: str | None = None
        #: The pids of the workers alive when a worker's death broke the pool.
        self._survivors: set[int] | None = None

    def describe(self) -> str:
        text = str(WorkerCount(self.slots, self.reason))
        failed = fork_server.failure()
        if failed is not None:
            text += f"; they start as fresh interpreters, the fork server could not start: {failed}"
        return text

    @property
    def executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # made by the first worker with an error to leave: a crash leaves nothing behind
            self._teardowns = os.path.join(
                tempfile.gettempdir(), f"dotevals-teardowns-{os.getpid()}-{uuid.uuid4().hex}"
            )
            # the model limits of dotevals.llm are split between the workers
            environ = {**os.environ, WORKERS_VARIABLE: str(self.slots)}
            self._executor = ProcessPoolExecutor(
                max_workers=self.slots,
                initializer=worker.initialize,
                initargs=(list(sys.path), os.getcwd(), os.getpid(), self._teardowns, environ),
                context=fork_server.start_method(),
            )
        return self._executor

    def start(self) -> None:
        for _ in range(self.slots):  # each worker imports dotevals while the run sets up
            self.executor.submit(worker.ready)

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        try:
            future = self.executor.submit(fn, *args)
        except BrokenProcessPool as exc:
            # a worker died since the last result: this call fails as the running ones
            # do, and the stream replaces the workers once it knows which died
            future = Future()
            future.set_exception(exc)
        future.add_done_callback(self._note_survivors)
        return asyncio.wrap_future(future)

    def _note_survivors(self, future: Future[Any]) -> None:
        """Runs in loky's own thread as it fails the calls of a broken pool, before it
        kills the workers that are left: those are the survivors."""
        if (
            self._survivors is None
            and not future.cancelled()
            and isinstance(future.exception(), TerminatedWorkerError)
        ):
            self._survivors = _living_children()

    def survivors(self) -> set[int] | None:
        return self._survivors

    def replace(self, hung: bool) -> None:
        """A broken loky pool cannot take new calls: kill what is left, start afresh."""
        self.shutdown(kill=True)
        self._survivors = None

    def shutdown(self, kill: bool = False) -> list[str]:
        if self._executor is None:
            return []
        self._executor.shutdown(wait=True, kill_workers=kill)  # the workers have exited
        self._executor = None
        folder, self._teardowns = self._teardowns, None
        if folder is None or not os.path.isdir(folder):  # no worker had an error to leave
            return []
        errors = [path.read_text(encoding="utf-8") for path in sorted(Path(folder).glob("*.txt"))]
        shutil.rmtree(folder, ignore_errors=True)
        return errors

    def blame(self, exc: BaseException) -> Exception:
        """A worker that ended is a death; any other broken pool, a failed transfer."""
        if isinstance(exc, TerminatedWorkerError):
            return super().blame(exc)
        cause = str(exc.__cause__ or "").strip().splitlines()
        return TransferError(
            f"the process pool broke while passing this row to or from its worker ({exc}"
            + (f" {cause[-1]}" if cause else "")
            + ")"
        )

    def how_died(self, exc: BaseException) -> str:
        """How workers ended, from loky's message: ``{SIGSEGV(-11)}`` -> ``signal SIGSEGV``."""
        codes = re.findall(r"(\w+)\((-?\d+)\)", str(exc).partition("exit codes of the workers")[2])
        if not codes:
            return "it ended without a reason given"
        parts = [
            f"exit code {n}" if kind == "EXIT" else f"killed by signal {kind}" for kind, n in codes
        ]
        if any(kind == "SIGKILL" for kind, _ in codes):
            parts.append("as the out-of-memory killer does")
        return ", ".join(parts)


def _living_children() -> set[int]:
    """The pids of this process's descendants (workers, a fork server's too) that have
    not ended."""
    import psutil  # here: needed only once a worker has died

    living = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                living.add(child.pid)
    return living
