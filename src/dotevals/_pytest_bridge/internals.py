"""Every use of pytest's private API, behind named functions.

dotevals runs evaluation items after pytest's own test loop and builds their
fixtures in worker processes, which pytest has no public API for. Each
function here is one such use; nothing else in dotevals imports ``_pytest`` or
reads a private attribute of pytest's objects, so that the pin ``pytest<10``
points at this file, and ``tests/unit/test_pytest_internals.py`` checks every
function on the oldest and the newest supported pytest.

PYTEST_DONT_REWRITE (the plugin imports this module before it can turn rewriting off)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _pytest.config import _prepareconfig
from _pytest.fixtures import (
    FixtureDef,
    FixtureLookupError,
    SubRequest,
    getfixturemarker,
    resolve_fixture_function,
)
from _pytest.python import path_matches_patterns

__all__ = [
    "FixtureDef",
    "FixtureState",
    "SubRequest",
    "configure",
    "creating_only",
    "fixture_closure",
    "fixture_marker",
    "fixtures_by_name",
    "function_fixturedefs",
    "generate_functions",
    "higher_scoped_params",
    "is_python_file",
    "missing_fixture",
    "new_config",
    "pop_from_stack",
    "put_state",
    "resolve_fixture_function",
    "setup_state",
    "skip_at_item",
    "stop_rewriting",
    "take_state",
    "item_of_request",
    "unconfigure",
]

#: A fixture definition's cached value and finalizers, kept aside while another item runs.
FixtureState = tuple[Any, list[Callable[[], object]]]


# Configuration and collection ---------------------------------------------
def stop_rewriting(pluginmanager: pytest.PytestPluginManager, package: str) -> None:
    """Take ``package`` out of the packages whose asserts pytest rewrites (it marks every
    installed plugin's package)."""
    marked = getattr(pluginmanager.rewrite_hook, "_must_rewrite", None)
    if isinstance(marked, set) and package in marked:
        marked.discard(package)
        pluginmanager.rewrite_hook._marked_for_rewrite_cache.clear()  # type: ignore[attr-defined]


def is_python_file(path: Path, config: pytest.Config) -> bool:
    """``path`` matches the ``python_files`` patterns: pytest collects it itself."""
    return bool(path_matches_patterns(path, config.getini("python_files")))


def generate_functions(collector: pytest.Collector, name: str, obj: object) -> list[Any] | None:
    """The items pytest makes of function ``obj`` in ``collector`` (parametrized ones
    included), as for a ``test_*`` function; None where the collector makes none."""
    generate = getattr(collector, "_genfunctions", None)
    return None if generate is None else list(generate(name, obj))


def new_config(args: Sequence[str]) -> pytest.Config:
    """A configuration of pytest's command line ``args``, plugins loaded."""
    return _prepareconfig(list(args))


def configure(config: pytest.Config) -> None:
    config._do_configure()


def unconfigure(config: pytest.Config) -> None:
    config._ensure_unconfigure()


# Fixtures of an item -------------------------------------------------------
def setup_state(session: pytest.Session) -> Any:
    """The session's ``SetupState``: the stack of set-up nodes and their finalizers."""
    return session._setupstate


def pop_from_stack(state: Any, item: pytest.Item) -> list[Callable[[], object]]:
    """Take ``item`` off the set-up stack; its finalizers."""
    finalizers, _ = state.stack.pop(item)
    return finalizers


def item_of_request(request: Any) -> pytest.Item | None:
    """The item a fixture request serves, None for none."""
    return getattr(request, "_pyfuncitem", None)


@contextmanager
def creating_only(item: pytest.Item, names: Sequence[str]) -> Iterator[None]:
    """While the block runs, setting ``item`` up creates only the fixtures ``names``."""
    request = item._request  # type: ignore[attr-defined]

    def fill_only_names() -> None:
        for name in names:
            item.funcargs[name] = request.getfixturevalue(name)  # type: ignore[attr-defined]

    request._fillfixtures = fill_only_names
    try:
        yield
    finally:
        del request._fillfixtures


def function_fixturedefs(item: pytest.Item) -> list[FixtureDef[Any]]:
    """The function-scoped fixture definitions ``item`` has set up."""
    request = item._request  # type: ignore[attr-defined]
    return [fd for fd in request._fixture_defs.values() if fd.scope == "function"]


def take_state(fixturedef: FixtureDef[Any]) -> FixtureState:
    """A fixture definition's cached value and finalizers, leaving it as never set up."""
    state = (fixturedef.cached_result, list(fixturedef._finalizers))
    fixturedef.cached_result = None
    fixturedef._finalizers.clear()
    return state


def put_state(fixturedef: FixtureDef[Any], state: FixtureState) -> None:
    fixturedef.cached_result = state[0]
    fixturedef._finalizers[:] = state[1]


def fixture_closure(item: pytest.Item) -> list[str]:
    """Every fixture name ``item`` needs, directly or not, autouse included."""
    info = getattr(item, "_fixtureinfo", None)
    return [] if info is None else list(info.names_closure)


def fixtures_by_name(item: pytest.Item) -> dict[str, Sequence[FixtureDef[Any]]]:
    """The fixture definitions visible to ``item``, by name (the last one overrides)."""
    info = getattr(item, "_fixtureinfo", None)
    return {} if info is None else dict(info.name2fixturedefs)


def missing_fixture(item: pytest.Item, name: str) -> LookupError:
    """pytest's own error for the fixture ``name`` that ``item`` asks for and nothing
    defines: its report names the fixtures there are, as for a test."""
    return FixtureLookupError(name, item._request)  # type: ignore[attr-defined]


def higher_scoped_params(item: pytest.Item) -> tuple[tuple[str, str], ...]:
    """``item``'s parameters of a scope wider than ``function``, as (name, repr)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ()
    scopes = getattr(callspec, "_arg2scope", {})
    return tuple(
        sorted(
            (name, repr(value))
            for name, value in callspec.params.items()
            if str(getattr(scopes.get(name), "value", "function")) != "function"
        )
    )


def fixture_marker(obj: object) -> Any:
    """The ``@pytest.fixture`` marker of ``obj`` (its ``name``), None if it is no fixture."""
    return getfixturemarker(obj)


# Reports --------------------------------------------------------------------
def skip_at_item(reason: str) -> BaseException:
    """The exception that reports an item skipped for ``reason`` at the item's own
    location, as a skip mark does (not at the line that raised it)."""
    skipped = pytest.skip.Exception(reason)
    skipped._use_item_location = True
    return skipped
