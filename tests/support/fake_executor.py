"""An in-memory executor for testing the stream in-process, in milliseconds.

Every chunk the stream submits becomes a :class:`Call` whose future the test
settles: run it (``worker_process.run_chunk`` in this process), fail it with a worker
death, or leave it hanging. With ``autorun`` the executor settles each call as
it is submitted: calls holding a ``fatal`` row die, calls holding a
``hanging`` row start (as the worker says when its rows start) and never
finish, the others run. With ``attributed``, each call runs in a pretend worker
of its own, whose pid it writes in its start mark, and the executor says which
workers survived a death, as a local pool does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import cloudpickle

from dotevals._engine.executors.base import Executor
from dotevals._engine.start_marks import StartMarks, mark_started
from dotevals._engine.stream import Clock


class WorkerDeath(Exception):
    """How the fake pool says the worker running a call died."""


@dataclass
class Call:
    """One submitted chunk: ``fn(*args)`` and the future the stream awaits."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    #: The pid of the pretend worker running it.
    pid: int = 0
    died: bool = False

    @property
    def item_ids(self) -> list[int]:
        return [item_id for item_id, _, _ in cloudpickle.loads(self.args[2])]

    @property
    def started(self) -> bool:
        return self.args[3] is not None and StartMarks.worker(self.args[3]) is not None

    def start(self) -> None:
        """The worker starts scoring the rows (its fixtures are ready)."""
        mark_started(self.args[3], self.pid)

    def run(self) -> None:
        """Score the chunk in this process; the future gets what a process pool would give:
        the result through pickle, or the error pickling it raised."""
        if self.future.done():
            return
        if not self.started:
            self.start()  # in its pretend worker (the rows write this process's pid after it)
        try:
            self.future.set_result(cloudpickle.loads(cloudpickle.dumps(self.fn(*self.args))))
        except Exception as exc:  # handed to the stream, as loky does
            self.future.set_exception(exc)

    def die(self) -> None:
        if not self.future.done():
            self.died = True
            self.future.set_exception(WorkerDeath("the worker was killed"))


class FakeExecutor(Executor):
    """``slots`` pretend workers; the calls, replacements and shutdowns are recorded."""

    died = (WorkerDeath,)

    def __init__(
        self,
        slots: int = 2,
        *,
        autorun: bool = True,
        fatal: Iterable[int] = (),
        hanging: Iterable[int] = (),
        attributed: bool = False,
    ):
        self.slots = slots
        self.autorun = autorun
        self.attributed = attributed
        self.fatal = set(fatal)
        self.hanging = set(hanging)
        self.calls: list[Call] = []
        self.replaced: list[bool] = []
        self.started = False
        self.shut_down = False

    @property
    def pending(self) -> list[Call]:
        """Calls submitted and not settled (cancelled ones are settled)."""
        return [call for call in self.calls if not call.future.done()]

    def start(self) -> None:
        self.started = True

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        call = Call(fn, args, asyncio.get_running_loop().create_future(), 10_000 + len(self.calls))
        self.calls.append(call)
        if self.autorun:
            self.settle(call)
        return call.future

    def settle(self, call: Call) -> None:
        """What ``autorun`` does with a call: die, hang or run, by the rows it holds."""
        rows = set(call.item_ids)
        if rows & self.fatal:
            call.start()
            call.die()
        elif rows & self.hanging:
            call.start()
        else:
            call.run()

    def replace(self, hung: bool) -> None:
        self.replaced.append(hung)

    def survivors(self) -> set[int] | None:
        if not self.attributed:
            return None
        return {call.pid for call in self.calls if not call.died}

    def shutdown(self, kill: bool = False) -> list[str]:
        self.shut_down = True
        return []


class FakeClock(Clock):
    """The watchdog's time, moved on by the test alone (:meth:`advance`): a deadline
    fires, or does not, without any real time passing. With ``jumps``, a wait on
    calls none of which is settled once everything ready has run lasts no time at
    all: the time jumps to its end."""

    def __init__(self, jumps: bool = False) -> None:
        self.time = 0.0
        self.jumps = jumps
        self._ticks: list[asyncio.Future[None]] = []

    def now(self) -> float:
        return self.time

    async def wait(self, futures: set[asyncio.Future[Any]], seconds: float) -> None:
        if self.jumps:
            await asyncio.sleep(0)  # what is ready runs first
            if not any(future.done() for future in futures):
                self.time += seconds
            return
        wake = self.time + seconds
        while not any(future.done() for future in futures) and self.time < wake:
            tick = asyncio.get_running_loop().create_future()
            self._ticks.append(tick)
            await asyncio.wait({*futures, tick}, return_when=asyncio.FIRST_COMPLETED)

    @property
    def waiting(self) -> bool:
        """The watchdog waits for the time to move on."""
        return any(not tick.done() for tick in self._ticks)

    def advance(self, seconds: float) -> None:
        self.time += seconds
        ticks, self._ticks = self._ticks, []
        for tick in ticks:
            if not tick.done():
                tick.set_result(None)


async def until(
    condition: Callable[[], bool], task: asyncio.Task[Any], seconds: float = 10
) -> None:
    """Let the loop run until ``condition`` holds; fail if ``task`` ends first or time runs out."""
    deadline = time.monotonic() + seconds
    while not condition():
        if task.done():
            task.result()  # raises what stopped it
            raise AssertionError("the stream ended before the condition held")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds} s")
        await asyncio.sleep(0.001)
