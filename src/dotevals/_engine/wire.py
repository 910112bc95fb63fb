"""What crosses the process boundary for one evaluation, and how it is pickled.

A :class:`Payload` carries the evaluation function, its retry policy, the
values of main-process fixtures and a :class:`FixtureSpec` per user fixture
that each worker creates itself. The main process pickles it once per
evaluation (:func:`pack_payload`) and each worker unpickles it once
(:mod:`dotevals._engine.worker.process`). cloudpickle sends functions,
closures and lambdas; eval files and conftests that a worker could not import
travel by value (:func:`send_module_by_value`).

Lists of rows and of records are pickled in one go (:func:`pack_each`); only
when that fails is each item tried alone, and an item that cannot travel is
replaced by its own error, so one bad row or result never costs the others.
Anything else that cannot be pickled is named in a one-line error.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.machinery import PathFinder
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeVar

import cloudpickle

from dotevals.errors import ConfigurationError, DatasetError

__all__ = [
    "NO_PARAM",
    "FixtureSpec",
    "Payload",
    "Sample",
    "pack_each",
    "pack_payload",
    "pack_rows",
    "send_module_by_value",
]

T = TypeVar("T")


class _NoParam(enum.Enum):
    """The type of :data:`NO_PARAM`: an enum member is one object, after pickling too."""

    NO_PARAM = "no param"

    def __repr__(self) -> str:
        return "NO_PARAM"


#: The ``param`` of a fixture that is not parametrized (compare with ``is``).
NO_PARAM: Final = _NoParam.NO_PARAM


def source_file(func: Any) -> str | None:
    """The file ``func``'s code comes from: cloudpickle sends a function by value
    without it, and a worker gives it back, for tracebacks that show the user's lines."""
    code = getattr(getattr(func, "__func__", func), "__code__", None)
    return code.co_filename if code is not None else None


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
    #: The file ``func`` comes from (see :func:`source_file`).
    filename: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "filename", source_file(self.func))

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
    #: The run's seed (see :class:`~dotevals._engine.scoring.Metering`).
    seed: int = 0
    #: The prices set in the main process, by model (:func:`dotevals.llm.set_price`).
    prices: dict[str, Any] = field(default_factory=dict)
    #: The file ``func`` comes from (see :func:`source_file`).
    filename: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.filename = source_file(self.func)


def pack_each(items: list[T], replace: Callable[[T, Exception], T]) -> bytes:
    """Pickle ``items``; an item that cannot be pickled is sent as ``replace(item, error)``."""
    try:
        return cloudpickle.dumps(items)
    except Exception:
        return cloudpickle.dumps([_sendable(item, replace) for item in items])


def _sendable(item: T, replace: Callable[[T, Exception], T]) -> T:
    try:
        cloudpickle.dumps(item)
    except Exception as exc:
        return replace(item, exc)
    return item


def pack_payload(name: str, payload: Payload, remote: bool = False) -> bytes:
    """Pickle an evaluation for the workers, naming what cannot be sent."""
    for func in [payload.func, *(spec.func for spec in payload.specs.values())]:
        send_module_by_value(func, remote)
    try:
        return cloudpickle.dumps(payload)
    except Exception as exc:
        parts = {"the evaluation function": payload.func, "its retry policy": payload.retrying}
        parts.update({f"fixture {n!r}": spec.func for n, spec in payload.specs.items()})
        parts.update({f"fixture value {n!r}": value for n, value in payload.values.items()})
        culprit = next((label for label, obj in parts.items() if not _pickles(obj)), "it")
        raise ConfigurationError(
            f"{name}: {culprit} cannot be sent to worker processes ({type(exc).__name__}: "
            f"{exc}); make it picklable, create it inside a fixture, or run without --workers"
        ) from None


#: One sample to score: (item_id, epoch, the row's arguments or why it has none).
Sample = tuple[int, int, Any]


def pack_rows(chunk: list[Sample]) -> bytes:
    """Pickle a chunk; a row that cannot be pickled goes as that row's error."""
    return pack_each(chunk, _unsendable)


def _unsendable(sample: Sample, exc: Exception) -> Sample:
    item_id, epoch, _ = sample
    return (
        item_id,
        epoch,
        DatasetError(
            f"row {item_id} cannot be sent to a worker process ({type(exc).__name__}: {exc})"
        ),
    )


def send_module_by_value(func: Any, remote: bool) -> None:
    """Eval files and conftests travel by value when a worker could not import them.

    Local workers share this process's ``sys.path``: only modules pytest imported
    under names that path cannot resolve (``--import-mode=importlib``) travel by
    value. Remote workers have only what is installed there: the function's
    module and every other module of the project (below the working directory,
    not an installed package) travel by value.
    """
    module = sys.modules.get(getattr(func, "__module__", None) or "")
    if module is None or module.__name__ == "__main__":
        return
    if remote:
        for local in [module, *_project_modules()]:
            cloudpickle.register_pickle_by_value(local)
    elif PathFinder.find_spec(module.__name__.partition(".")[0], sys.path) is None:
        cloudpickle.register_pickle_by_value(module)


def _project_modules() -> list[ModuleType]:
    """Modules loaded from files below the working directory that are not installed."""
    root = Path.cwd()
    found = []
    for name, module in list(sys.modules.items()):
        path = Path(getattr(module, "__file__", None) or "/")
        if (
            root in path.parents
            and not name.startswith("dotevals")
            and not {"site-packages", "dist-packages"} & set(path.parts)
        ):
            found.append(module)
    return found


def _pickles(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:
        return False
    return True
