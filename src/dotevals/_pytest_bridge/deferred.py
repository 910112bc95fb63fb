"""Fixtures of pytest items that run after pytest's own test loop.

Evaluation items are collected like tests but run later by the Runner. This
module gives them pytest's real fixture machinery at that point: an item is
set up through the session's ``SetupState`` (so every fixture is created once
for its scope, exactly as in plain pytest) and torn down after its
evaluation, also when it fails.

Async evaluations may run concurrently with each other. Their items are then
set up one after another and *detached*: the item's own finalizers and the
state of its function-scoped fixtures are kept aside, so the next item gets
fresh function-scoped fixtures, and are put back when that item is torn down.

Every method is blocking and runs on the main thread, as pytest's own set-up
does (a fixture may install a signal handler); the Runner calls them through
:mod:`dotevals._pytest_bridge.greenlets`. Async fixtures (``async def``, async generators)
are awaited on the event loop the evaluations run on, so loop-bound clients
work in the evaluation.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

if sys.version_info < (3, 11):  # pragma: no cover - pytest brings the backport there
    from exceptiongroup import BaseExceptionGroup

from dotevals._pytest_bridge import greenlets
from dotevals._pytest_bridge.internals import (
    FixtureDef,
    FixtureState,
    SubRequest,
    creating_only,
    fixtures_by_name,
    function_fixturedefs,
    pop_from_stack,
    put_state,
    resolve_fixture_function,
    setup_state,
    take_state,
)

__all__ = ["DeferredSetup", "DetachedItem", "setup_async_fixture"]


@dataclass
class DetachedItem:
    """An item that is set up but no longer on the SetupState stack."""

    item: pytest.Item
    finalizers: list[Callable[[], object]]
    fixture_state: dict[FixtureDef[Any], FixtureState] = field(default_factory=dict)


class DeferredSetup:
    """Sets up and tears down pytest items outside pytest's runtest protocol.

    Every method is blocking; run it with :func:`dotevals._pytest_bridge.greenlets.call` from
    the coroutine that runs the evaluations, so that async fixtures can be awaited.
    """

    def __init__(self, session: pytest.Session):
        self._state = setup_state(session)
        self._set_up: set[pytest.Item] = set()

    def setup(self, item: pytest.Item) -> dict[str, Any]:
        """Set the item up through pytest's setup hook and return its fixture values.

        The hook is what a test's setup runs: skip marks, output capture, logging,
        then the fixtures.
        """
        self._set_up.add(item)
        item.ihook.pytest_runtest_setup(item=item)
        return dict(item.funcargs)  # type: ignore[attr-defined]

    def setup_for_workers(self, item: pytest.Item, names: list[str]) -> dict[str, Any]:
        """Set the item up through pytest's setup hook, creating only ``names`` (pytest's own).

        Its user fixtures are created in the worker processes instead.
        """
        self._set_up.add(item)
        with creating_only(item, names):
            item.ihook.pytest_runtest_setup(item=item)
        return {name: item.funcargs[name] for name in names}  # type: ignore[attr-defined]

    def teardown_all(self) -> None:
        """Tear down every scope still set up (the run stops early)."""
        self._set_up.clear()
        self._state.teardown_exact(None)

    def teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Tear ``item`` down, with every scope ``nextitem`` does not share (pytest's hook).

        An item refused before its setup hook ran (it cannot run in workers) only
        has the scopes around it to tear down: the hook would look for its setup.
        """
        if item not in self._set_up:
            self._state.teardown_exact(nextitem)
            return
        self._set_up.discard(item)
        item.ihook.pytest_runtest_teardown(item=item, nextitem=nextitem)

    def detach(self, item: pytest.Item) -> DetachedItem:
        """Take a set-up item off the stack so the next one can be set up."""
        detached = DetachedItem(item, pop_from_stack(self._state, item))
        for fixturedef in function_fixturedefs(item):
            detached.fixture_state[fixturedef] = take_state(fixturedef)
        return detached

    def teardown_detached(self, detached: DetachedItem) -> None:
        """Run a detached item's finalizers with its own fixture state put back."""
        self._set_up.discard(detached.item)
        others = {fd: take_state(fd) for fd in detached.fixture_state}
        for fixturedef, state in detached.fixture_state.items():
            put_state(fixturedef, state)
        errors: list[BaseException] = []
        try:
            while detached.finalizers:
                try:
                    detached.finalizers.pop()()
                except BaseException as exc:  # reported below, like pytest does
                    errors.append(exc)
        finally:
            for fixturedef, state in others.items():
                put_state(fixturedef, state)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise BaseExceptionGroup(f"errors tearing down {detached.item.nodeid}", errors)


def is_async_fixture(fixturedef: FixtureDef[Any]) -> bool:
    func = fixturedef.func
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def has_async_fixture(item: pytest.Item) -> bool:
    """An async fixture is among those ``item`` uses (directly or through others)."""
    return any(
        is_async_fixture(fixturedef)
        for fixturedefs in fixtures_by_name(item).values()
        for fixturedef in fixturedefs
    )


def setup_async_fixture(fixturedef: FixtureDef[Any], request: SubRequest) -> Any:
    """Run an async fixture on the evaluations' event loop and cache its value.

    Implements ``pytest_fixture_setup`` for async fixtures of evaluation items;
    the teardown of an async generator fixture is registered as a finalizer.
    """
    if not greenlets.in_call():
        pytest.fail(
            f"async fixture {request.fixturename!r} can only be set up while dotevals "
            "runs evaluations",
            pytrace=False,
        )
    kwargs = {name: request.getfixturevalue(name) for name in fixturedef.argnames}
    func = resolve_fixture_function(fixturedef, request)
    cache_key = fixturedef.cache_key(request)
    try:
        if inspect.isasyncgenfunction(func):
            generator = func(**kwargs)
            value = greenlets.wait_for(generator.__anext__())
            request.addfinalizer(lambda: _finish_async_generator(generator))
        else:
            value = greenlets.wait_for(cast(Awaitable[Any], func(**kwargs)))
    except BaseException as exc:
        fixturedef.cached_result = (None, cache_key, (exc, exc.__traceback__))
        raise
    fixturedef.cached_result = (value, cache_key, None)
    return value


def _finish_async_generator(generator: Any) -> None:
    try:
        greenlets.wait_for(generator.__anext__())
    except StopAsyncIteration:
        return
    raise RuntimeError(f"async fixture {generator.__name__} yielded more than once")
