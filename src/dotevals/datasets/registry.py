"""Datasets by name: built-ins, ``register_dataset`` and entry points.

Installed packages declare datasets in the ``dotevals.datasets`` entry-point
group. They are found by the rules of every dotevals registry
(:mod:`dotevals._util.registry`): looked up lazily, each loaded once, an entry
point that cannot be loaded, or a class that is not a usable ``Dataset``,
gives a warning and is skipped, and a name keeps the class that has it (an
entry point claiming a taken name is ignored, with a warning).

A later ``register_dataset`` call with the same class, or the same class
defined again (same module and qualified name), replaces the earlier one; a
different class under a taken name is refused with a ValueError.
"""

from __future__ import annotations

from typing import Any, TypeVar

from dotevals._util.registry import Registry
from dotevals.datasets.base import Dataset
from dotevals.errors import ConfigurationError, DatasetError

__all__ = [
    "ENTRY_POINT_GROUP",
    "DatasetRegistry",
    "register_dataset",
    "get_dataset",
    "get_dataset_info",
    "list_available",
    "list_datasets",
]

ENTRY_POINT_GROUP = "dotevals.datasets"
#: The datasets dotevals ships, imported on first use.
_BUILTINS = {"arithmetic": "dotevals.datasets.arithmetic:Arithmetic"}

D = TypeVar("D", bound=type[Dataset])


def _problem(cls: object) -> str | None:
    """Why ``cls`` cannot be registered, or None if it can."""
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        return f"{cls!r} is not a subclass of dotevals.datasets.Dataset"
    missing = [a for a in ("name", "columns") if not getattr(cls, a, None)]
    if not isinstance(getattr(cls, "splits", None), (list, tuple)):  # [] for no splits
        missing.append("splits")
    if missing:
        return f"{_where(cls)} does not set {', '.join(missing)}"
    if not isinstance(cls.name, str):
        return f"{_where(cls)}.name must be a string"
    return None


def _usable(entry_point: str, cls: Any) -> tuple[str, type[Dataset]]:
    """An entry point's class under its dataset name; TypeError if it is not usable."""
    problem = _problem(cls)
    if problem:
        raise TypeError(problem)
    return cls.name, cls


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class DatasetRegistry:
    """Dataset classes by name; the entry points are read at the first lookup."""

    def __init__(self) -> None:
        self._classes: Registry[type[Dataset]] = Registry(
            ENTRY_POINT_GROUP, "dataset", builtins=_BUILTINS, convert=_usable
        )

    def register(self, cls: D) -> D:
        """Make ``cls`` available as ``@foreach.<cls.name>``; usable as a class decorator."""
        problem = _problem(cls)
        if problem:
            raise ConfigurationError(f"cannot register dataset: {problem}")
        existing = self._classes.loaded.get(cls.name)
        if existing is None and cls.name in _BUILTINS:  # taken before it is first loaded
            existing = self._classes.get(cls.name)
        if existing is not None and _where(existing) != _where(cls):
            raise ConfigurationError(
                f"cannot register dataset {_where(cls)}: {cls.name!r} is already registered "
                f"with a different class, {_where(existing)}; give it another name"
            )
        self._classes.register(cls.name, cls)
        return cls

    def discover_plugins(self, force: bool = False) -> None:
        """Register the built-ins and the entry points, once (again with ``force``)."""
        if force:
            self._classes.reset()
        self._classes.load_all()

    def reset(self) -> None:
        """Forget every dataset and scan again at the next lookup. For tests only.

        Built-ins and entry points come back; datasets registered with
        ``register`` do not.
        """
        self._classes.reset()

    def get_dataset_class(self, name: str) -> type[Dataset]:
        """The dataset class registered as ``name``.

        The first look-up loads every entry point: a dataset is known by its class's
        ``name``, which its entry point's name need not be.
        """
        self._classes.load_all()
        cls = self._classes.get(name)
        if cls is None:
            available = ", ".join(repr(n) for n in self._classes) or "none"
            raise DatasetError(
                f"unknown dataset {name!r}: available datasets are {available} "
                f"(install a package that provides it, or call register_dataset)"
            )
        return cls

    def list_datasets(self) -> list[str]:
        """The names of every registered dataset, sorted."""
        return list(self._classes)


#: The registry ``@foreach.<name>`` looks datasets up in.
_registry = DatasetRegistry()
register_dataset = _registry.register
get_dataset = _registry.get_dataset_class
list_datasets = list_available = _registry.list_datasets
_reset = _registry.reset


def get_dataset_info(name: str) -> dict[str, Any]:
    """``name``, ``splits``, ``columns`` and ``num_rows`` of a registered dataset."""
    cls = get_dataset(name)
    return {
        "name": cls.name,
        "splits": list(cls.splits),
        "columns": list(cls.columns),
        "num_rows": cls.num_rows,
    }
