"""The Runner's pytest items: their fixtures set up and torn down on the main thread.

Each method awaits :class:`~dotevals._pytest_bridge.deferred.DeferredSetup` (pytest's own
set-up state) through :func:`dotevals._pytest_bridge.greenlets.call`, so that a fixture
runs on the main thread and an async fixture on the evaluations' loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dotevals._pytest_bridge import greenlets
from dotevals._pytest_bridge.deferred import DeferredSetup, DetachedItem

if TYPE_CHECKING:
    from dotevals._engine.wire import FixtureSpec

__all__ = ["PytestItems"]


class PytestItems:
    """Set-up and teardown of the evaluation items of one pytest session."""

    def __init__(self, session: pytest.Session):
        self.session = session
        self._setup = DeferredSetup(session)

    async def fixture_values(self, item: pytest.Item, names: tuple[str, ...]) -> dict[str, Any]:
        """Set ``item`` up; the values of the fixtures ``names``."""
        values = await greenlets.call(self._setup.setup, item)
        return {name: values[name] for name in names}

    async def worker_fixtures(
        self, item: pytest.Item
    ) -> tuple[dict[str, FixtureSpec], dict[str, Any]]:
        """Set ``item`` up for worker processes: its user fixtures' specs (workers build
        those) and the values of pytest's own fixtures it needs (made here)."""
        from dotevals._pytest_bridge.fixture_specs import fixture_specs  # only with workers

        specs, builtins = fixture_specs(item)
        values = await greenlets.call(self._setup.setup_for_workers, item, builtins)
        return specs, values

    async def detach(self, item: pytest.Item) -> DetachedItem:
        return await greenlets.call(self._setup.detach, item)

    async def teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        await greenlets.call(self._setup.teardown, item, nextitem)

    async def teardown_detached(self, detached: DetachedItem) -> None:
        await greenlets.call(self._setup.teardown_detached, detached)

    async def teardown_all(self) -> None:
        await greenlets.call(self._setup.teardown_all)
