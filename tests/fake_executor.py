"""An in-memory executor for testing the stream in-process, in milliseconds.

Every chunk the stream submits becomes a :class:`Call` whose future the test
settles: run it (``worker.run_chunk`` in this process), fail it with a worker
death, or leave it hanging. With ``autorun`` the executor settles each call as
it is submitted: calls holding a ``fatal`` row die, calls holding a
``hanging`` row never finish, the others run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import cloudpickle

from dotevals.engine.stream import Executor


class WorkerDeath(Exception):
    """How the fake pool says the worker running a call died."""


@dataclass
class Call:
    """One submitted chunk: ``fn(*args)`` and the future the stream awaits."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]

    @property
    def item_ids(self) -> list[int]:
        return [item_id for item_id, _ in cloudpickle.loads(self.args[2])]

    def run(self) -> None:
        """Score the chunk in this process and resolve the future with what it returns."""
        if not self.future.done():
            self.future.set_result(self.fn(*self.args))

    def die(self) -> None:
        if not self.future.done():
            self.future.set_exception(WorkerDeath("the worker was killed"))


class FakeExecutor(Executor):
    """``workers`` pretend workers; the calls, replacements and shutdowns are recorded."""

    died = (WorkerDeath,)

    def __init__(
        self,
        workers: int = 2,
        *,
        autorun: bool = True,
        fatal: Iterable[int] = (),
        hanging: Iterable[int] = (),
    ):
        self.workers = workers
        self.autorun = autorun
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
        call = Call(fn, args, asyncio.get_running_loop().create_future())
        self.calls.append(call)
        if self.autorun:
            self.settle(call)
        return call.future

    def settle(self, call: Call) -> None:
        """What ``autorun`` does with a call: die, hang or run, by the rows it holds."""
        rows = set(call.item_ids)
        if rows & self.fatal:
            call.die()
        elif not rows & self.hanging:
            call.run()

    def replace(self, hung: bool) -> None:
        self.replaced.append(hung)

    def shutdown(self, kill: bool = False) -> None:
        self.shut_down = True


async def until(condition: Callable[[], bool], task: asyncio.Task[Any], turns: int = 1000) -> None:
    """Let the loop run until ``condition`` holds; fail if ``task`` ends first or it never does."""
    for _ in range(turns):
        if condition():
            return
        if task.done():
            task.result()  # raises what stopped it
            raise AssertionError("the stream ended before the condition held")
        await asyncio.sleep(0)
    raise AssertionError(f"condition not met after {turns} turns of the loop")
