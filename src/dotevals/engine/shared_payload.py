"""What crosses the process boundary for one evaluation: built on the main side, read in workers.

A :class:`Payload` carries the evaluation function, its retry policy, the
values of main-process fixtures and a :class:`FixtureSpec` per user fixture
that each worker creates itself. It is pickled once per evaluation
(:mod:`dotevals.engine.main_pickling`) and unpickled once per worker
(:mod:`dotevals.engine.worker_process`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["NO_PARAM", "FixtureSpec", "Payload"]


class _NoParam(enum.Enum):
    """The type of :data:`NO_PARAM`: an enum member is one object, after pickling too."""

    NO_PARAM = "no param"

    def __repr__(self) -> str:
        return "NO_PARAM"


#: The ``param`` of a fixture that is not parametrized (compare with ``is``).
NO_PARAM: Final = _NoParam.NO_PARAM


@dataclass(frozen=True)
class FixtureSpec:
    """One user fixture as a worker creates it."""

    name: str
    func: Any
    argnames: tuple[str, ...]
    scope: str
    #: Node id of the scope instance ("" for the session): the worker creates
    #: the fixture once per (name, definition, scope_key, param).
    scope_key: str
    baseid: str
    param: Any = NO_PARAM
    nodeid: str = ""
    node_name: str = ""

    @property
    def cache_key(self) -> tuple[str, str, str, str]:
        return (self.name, self.baseid, self.scope_key, repr(self.param))


@dataclass
class Payload:
    """Everything a worker needs to score rows of one evaluation."""

    func: Any
    retrying: Any
    fixture_names: tuple[str, ...]
    specs: dict[str, FixtureSpec]
    values: dict[str, Any]
    #: Every fixture the evaluation needs, directly or not (pytest's fixture closure,
    #: autouse included): workers create them all before the first row.
    fixture_closure: tuple[str, ...]
    timeout: float | None = None
    #: The file ``func`` comes from: cloudpickle sends a function by value without it.
    filename: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        code = getattr(self.func, "__code__", None)
        self.filename = code.co_filename if code is not None else None
