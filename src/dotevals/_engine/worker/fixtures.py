"""Worker side: create each user fixture once per scope in a worker, tear it down at exit.

A worker process keeps one :class:`WorkerFixtures`. Fixtures of a scope wider
than ``function`` live as long as the worker (the pool): created on first use,
torn down in reverse order of creation when the worker exits. Function-scoped
fixtures live for one evaluation: they are torn down when the worker starts
on another evaluation, or exits. Generator and async fixtures work as in
pytest; async ones run on an event loop owned by the worker.

A fixture whose own code raises, setting up or tearing down, raises a
:class:`~dotevals.errors.FixtureError` naming it, with the traceback of its
code (the frames of dotevals left out), as the main process reports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dotevals._declare.row_errors import row_traceback
from dotevals._engine.scoring import error_text
from dotevals._engine.wire import NO_PARAM, FixtureSpec
from dotevals.errors import ConfigurationError, FixtureError

if TYPE_CHECKING:
    import asyncio

__all__ = ["WorkerFixtures", "WorkerRequest", "failure"]


class WorkerRequest:
    """What the ``request`` fixture offers inside a worker process.

    ``param``, ``fixturename``, ``scope``, ``node.name`` / ``node.nodeid``,
    ``addfinalizer`` and ``getfixturevalue`` work; anything tied to pytest's
    session (``config``, ``session``, markers) is only in the main process.
    """

    def __init__(self, spec: FixtureSpec, fixtures: WorkerFixtures, context: _Context):
        self.fixturename = spec.name
        self.scope = spec.scope
        self.node = _Node(spec.node_name, spec.nodeid)
        self._spec = spec
        self._fixtures = fixtures
        self._context = context

    def addfinalizer(self, finalizer: Callable[[], object]) -> None:
        self._fixtures.finalizers_for(self._spec.scope).append(finalizer)

    def getfixturevalue(self, name: str) -> Any:
        return self._fixtures.get(name, self._context)

    def __getattr__(self, name: str) -> Any:
        if name == "param":  # only set for a parametrized fixture, as in pytest
            if self._spec.param is NO_PARAM:
                raise AttributeError(f"fixture {self.fixturename!r} is not parametrized")
            return self._spec.param
        raise AttributeError(
            f"request.{name} is not available in a worker process: dotevals runs this "
            "evaluation with --workers, where fixtures are created inside each worker"
        )


class _Node:
    def __init__(self, name: str, nodeid: str):
        self.name = name
        self.nodeid = nodeid


class _Context:
    """The fixtures of one evaluation: specs to build from and main-process values."""

    def __init__(self, specs: dict[str, FixtureSpec], values: dict[str, Any]):
        self.specs = specs
        self.values = values


class WorkerFixtures:
    """Fixture values and finalizers of one worker process."""

    def __init__(self) -> None:
        self._pool_values: dict[tuple[str, str, str, str], Any] = {}
        self._pool_finalizers: list[Callable[[], object]] = []
        self._function_values: dict[tuple[str, str, str, str], Any] = {}
        self._function_finalizers: list[Callable[[], object]] = []
        self._evaluation: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def resolve(
        self,
        evaluation_id: str,
        specs: dict[str, FixtureSpec],
        values: dict[str, Any],
        names: tuple[str, ...],
        fixture_closure: tuple[str, ...],
    ) -> dict[str, Any]:
        """Create every fixture of ``fixture_closure`` (autouse included); return the
        ``names`` values."""
        if evaluation_id != self._evaluation:
            self.end_evaluation()
            self._evaluation = evaluation_id
        context = _Context(specs, values)
        for name in fixture_closure:
            self.get(name, context)
        return {name: self.get(name, context) for name in names}

    def get(self, name: str, context: _Context) -> Any:
        if name in context.values:
            return context.values[name]
        spec = context.specs.get(name)
        if name == "request" and spec is not None:
            return WorkerRequest(spec, self, context)
        if spec is None:
            raise ConfigurationError(
                f"fixture {name!r} is not available in a worker process; request it as a "
                "parameter of the evaluation or of one of its fixtures"
            )
        cache = self._function_values if spec.scope == "function" else self._pool_values
        if spec.cache_key not in cache:
            kwargs = {
                arg: WorkerRequest(spec, self, context)
                if arg == "request"
                else self.get(arg, context)
                for arg in spec.argnames
            }
            cache[spec.cache_key] = self._create(spec, kwargs)
        return cache[spec.cache_key]

    def finalizers_for(self, scope: str) -> list[Callable[[], object]]:
        return self._function_finalizers if scope == "function" else self._pool_finalizers

    def _create(self, spec: FixtureSpec, kwargs: dict[str, Any]) -> Any:
        func = spec.func
        finalizers = self.finalizers_for(spec.scope)
        try:
            if inspect.isgeneratorfunction(func):
                generator = func(**kwargs)
                value = next(generator)
                finalizers.append(lambda: _exhaust(generator, spec.name))
            elif inspect.isasyncgenfunction(func):
                agen = func(**kwargs)
                value = self._run(agen.__anext__())
                finalizers.append(lambda: self._finish_async(agen, spec.name))
            elif inspect.iscoroutinefunction(func):
                value = self._run(func(**kwargs))
            else:
                value = func(**kwargs)
        except StopIteration:
            raise ConfigurationError(f"fixture {spec.name!r} did not yield a value") from None
        except (FixtureError, ConfigurationError):  # a fixture it asked for, by name
            raise
        except Exception as exc:  # the fixture's own code
            raise failure(f"fixture {spec.name!r}", exc) from None
        return value

    def _run(self, awaitable: Any) -> Any:
        if self._loop is None:  # a worker imports asyncio once an async fixture needs it
            import asyncio

            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def _finish_async(self, agen: Any, name: str) -> None:
        try:
            self._run(agen.__anext__())
        except StopAsyncIteration:
            return
        except Exception as exc:  # the fixture's own teardown
            raise failure(f"the teardown of fixture {name!r}", exc) from None
        raise ConfigurationError(f"async fixture {name!r} yielded more than once")

    def end_evaluation(self) -> None:
        """Tear down the function-scoped fixtures of the current evaluation."""
        _run_finalizers(self._function_finalizers)
        self._function_values.clear()
        self._evaluation = None

    def close(self) -> None:
        """Tear everything down (the worker is exiting)."""
        try:
            self.end_evaluation()
        finally:
            _run_finalizers(self._pool_finalizers)
            self._pool_values.clear()
            if self._loop is not None:
                self._loop.close()
                self._loop = None


def _exhaust(generator: Any, name: str) -> None:
    try:
        next(generator)
    except StopIteration:
        return
    except Exception as exc:  # the fixture's own teardown
        raise failure(f"the teardown of fixture {name!r}", exc) from None
    raise ConfigurationError(f"fixture {name!r} yielded more than once")


def failure(what: str, exc: BaseException) -> FixtureError:
    """``what`` raised ``exc`` in this worker: the error with the traceback of the
    fixture's own code (the error alone when none of it is on the traceback)."""
    detail = row_traceback(exc) or error_text(exc)
    return FixtureError(
        f"{what} raised {error_text(exc)} in a worker process:\n\n{detail.rstrip()}"
    )


def _run_finalizers(finalizers: list[Callable[[], object]]) -> None:
    """Run finalizers newest first; every one runs, the first error is raised after."""
    first: BaseException | None = None
    while finalizers:
        try:
            finalizers.pop()()
        except BaseException as exc:  # keep tearing down the others
            first = first or exc
    if first is not None:
        raise first
