"""Datasets by name: built-ins, ``register_dataset`` and entry points.

Installed packages declare datasets in the ``dotevals.datasets`` entry-point
group. They are loaded lazily, the first time a dataset is looked up or
listed, and only once: an entry point that cannot be loaded, or a class that
is not a usable ``Dataset``, gives a warning and is skipped.

When two different classes claim the same name, the first one registered
stays (``register_dataset`` calls made before the first lookup, then the
built-ins, then the entry points), and a warning says which one was ignored.
A later ``register_dataset`` call replaces the earlier class, with a warning
unless it is the same class redefined (same module and qualified name).
"""

from __future__ import annotations

import warnings
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

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

# Loaded like entry points, so that they are found even when the package
# metadata is missing; the identical entry points in pyproject.toml are no-ops.
_BUILTINS = [
    EntryPoint("arithmetic", "dotevals.datasets.arithmetic:Arithmetic", ENTRY_POINT_GROUP),
]

D = TypeVar("D", bound=type[Dataset])


def _problem(cls: object) -> str | None:
    """Why ``cls`` cannot be registered, or None if it can."""
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        return f"{cls!r} is not a subclass of dotevals.datasets.Dataset"
    missing = [a for a in ("name", "columns") if not getattr(cls, a, None)]
    if not isinstance(getattr(cls, "splits", None), (list, tuple)):  # [] for no splits
        missing.append("splits")
    if missing:
        return f"{cls.__module__}.{cls.__qualname__} does not set {', '.join(missing)}"
    if not isinstance(cls.name, str):
        return f"{cls.__module__}.{cls.__qualname__}.name must be a string"
    return None


def _same(a: type, b: type) -> bool:
    """The same class, or the same class defined again (module reloaded, cell re-run)."""
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class DatasetRegistry:
    """Dataset classes by name; the entry points are read at the first lookup."""

    def __init__(self) -> None:
        self._datasets: dict[str, type[Dataset]] = {}
        self._loaded = False

    def register(self, cls: D) -> D:
        """Make ``cls`` available as ``@foreach.<cls.name>``; usable as a class decorator."""
        problem = _problem(cls)
        if problem:
            raise ConfigurationError(f"cannot register dataset: {problem}")
        existing = self._datasets.get(cls.name)
        if existing is not None and not _same(existing, cls):
            warnings.warn(
                f"dataset {cls.name!r}: {_where(cls)} replaces {_where(existing)}",
                stacklevel=2,
            )
        self._datasets[cls.name] = cls
        return cls

    def discover_plugins(self, force: bool = False) -> None:
        """Register the built-ins and the entry points, once (again with ``force``)."""
        if self._loaded and not force:
            return
        self._loaded = True
        for ep in [*_BUILTINS, *entry_points(group=ENTRY_POINT_GROUP)]:
            self._load_entry_point(ep)

    def _load_entry_point(self, ep: EntryPoint) -> None:
        try:
            cls = ep.load()
        except Exception as exc:
            warnings.warn(
                f"cannot load dataset entry point {ep.name!r} ({ep.value}): "
                f"{type(exc).__name__}: {exc}",
                stacklevel=4,
            )
            return
        problem = _problem(cls)
        if problem:
            warnings.warn(f"dataset entry point {ep.name!r} skipped: {problem}", stacklevel=4)
            return
        existing = self._datasets.get(cls.name)
        if existing is not None:
            if not _same(existing, cls):
                warnings.warn(
                    f"dataset entry point {ep.name!r} ({ep.value}) ignored: "
                    f"the name {cls.name!r} is already taken by {_where(existing)}",
                    stacklevel=4,
                )
            return
        self._datasets[cls.name] = cls

    def reset(self) -> None:
        """Forget every dataset and scan again at the next lookup. For tests only.

        Built-ins and entry points come back; datasets registered with
        ``register`` do not.
        """
        self._datasets.clear()
        self._loaded = False

    def get_dataset_class(self, name: str) -> type[Dataset]:
        """The dataset class registered as ``name``."""
        self.discover_plugins()
        try:
            return self._datasets[name]
        except KeyError:
            available = ", ".join(repr(n) for n in sorted(self._datasets)) or "none"
            raise DatasetError(
                f"unknown dataset {name!r}: available datasets are {available} "
                f"(install a package that provides it, or call register_dataset)"
            ) from None

    def list_datasets(self) -> list[str]:
        """The names of every registered dataset, sorted."""
        self.discover_plugins()
        return sorted(self._datasets)


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
