"""What a worker needs to build an item's fixtures itself.

A sync evaluation that runs in worker processes does not get its user
fixtures from the main process: each worker creates them itself, once per
scope, through :mod:`dotevals._engine.worker.fixtures`. This module describes those
fixtures as picklable :class:`FixtureSpec` objects, taken from pytest's own
view of the item (overrides, parametrization, autouse, ``usefixtures``).

pytest's own fixtures (``tmp_path``, ``monkeypatch``, ``capsys`` ...) belong to
the main process: they are set up there and their values are sent along when
they can be pickled; ``request`` is replaced in workers by a small stand-in.
"""

from __future__ import annotations

from typing import Any

import pytest

from dotevals._engine.wire import NO_PARAM, FixtureSpec
from dotevals._pytest_bridge.internals import fixture_closure, fixtures_by_name, missing_fixture
from dotevals.errors import ConfigurationError

__all__ = ["fixture_specs", "is_pytest_builtin"]

#: pytest fixtures that act on the main process itself: in a worker they would
#: patch, capture or record nothing.
MAIN_PROCESS_ONLY = frozenset(
    {
        "monkeypatch",
        "capsys",
        "capsysbinary",
        "capfd",
        "capfdbinary",
        "caplog",
        "recwarn",
        "pytestconfig",
        "cache",
        "record_property",
        "record_xml_attribute",
        "record_testsuite_property",
        "doctest_namespace",
        "pytester",
        "testdir",
    }
)
_SCOPE_NODES: dict[str, type[pytest.Collector]] = {
    "class": pytest.Class,
    "module": pytest.Module,
    "package": pytest.Package,
}


def is_pytest_builtin(fixturedef: Any) -> bool:
    """pytest's own fixtures, which only work in the main process."""
    module = getattr(fixturedef.func, "__module__", "") or ""
    return module == "_pytest" or module.startswith(("_pytest.", "pytest."))


def fixture_specs(item: pytest.Item) -> tuple[dict[str, FixtureSpec], list[str]]:
    """The user fixtures ``item`` needs, and the names of pytest's own it needs.

    A fixture nothing defines raises pytest's own lookup error, which pytest reports
    as for a test: the fixtures there are, by name.
    """
    definitions_by_name = fixtures_by_name(item)
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    specs: dict[str, FixtureSpec] = {}
    builtins: list[str] = []
    for name in fixture_closure(item):
        if name == "request":  # the worker's stand-in, for the item itself
            specs[name] = FixtureSpec(
                name, None, (), "function", item.nodeid, "", nodeid=item.nodeid, node_name=item.name
            )
            continue
        definitions = definitions_by_name.get(name)
        if not definitions:
            if name in params:  # direct parametrization: the value is the "fixture"
                builtins.append(name)
                continue
            raise missing_fixture(item, name)
        fixturedef = definitions[-1]
        if is_pytest_builtin(fixturedef):
            if name in MAIN_PROCESS_ONLY:
                raise ConfigurationError(
                    f"{item.nodeid}: fixture {name!r} works on the main process only and this "
                    "evaluation runs in worker processes (--workers); do that work inside a "
                    "fixture of your own, or run without --workers"
                )
            builtins.append(name)
            continue
        if name in fixturedef.argnames:
            raise ConfigurationError(
                f"{item.nodeid}: fixture {name!r} requests the fixture it overrides; "
                "that cannot be rebuilt in a worker process - rename one of them"
            )
        specs[name] = FixtureSpec(
            name=name,
            func=fixturedef.func,
            argnames=tuple(fixturedef.argnames),
            scope=fixturedef.scope,
            scope_key=_scope_key(item, fixturedef.scope, fixturedef.baseid),
            baseid=str(fixturedef.baseid),
            param=params.get(name, NO_PARAM),
            nodeid=item.nodeid,
            node_name=item.name,
        )
    return specs, builtins


def _scope_key(item: pytest.Item, scope: str, baseid: str) -> str:
    if scope == "session":
        return ""
    if scope == "function":
        return item.nodeid
    node = item.getparent(_SCOPE_NODES[scope])
    return node.nodeid if node is not None else str(baseid)
