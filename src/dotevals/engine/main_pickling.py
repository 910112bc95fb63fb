"""Main side: pickling an evaluation and its rows for the workers.

cloudpickle sends functions, closures and lambdas. Eval files and conftests
that a worker could not import travel by value (see
:func:`send_module_by_value`); anything that cannot be pickled is named in
a one-line error, or, for a row, stored as that row's error.
"""

from __future__ import annotations

import sys
from importlib.machinery import PathFinder
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from dotevals.engine.shared_payload import Payload
from dotevals.engine.shared_transfer import pack_each
from dotevals.errors import ConfigurationError, DatasetError

__all__ = ["pack_payload", "pack_rows", "send_module_by_value"]


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


def pack_rows(chunk: list[tuple[int, Any]]) -> bytes:
    """Pickle a chunk; a row that cannot be pickled goes as that row's error."""
    return pack_each(chunk, _unsendable)


def _unsendable(row: tuple[int, Any], exc: Exception) -> tuple[int, Any]:
    item_id = row[0]
    return item_id, DatasetError(
        f"row {item_id} cannot be sent to a worker process ({type(exc).__name__}: {exc})"
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
